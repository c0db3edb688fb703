namespace OpenPool.Engine.Http;

/// <summary>
/// A client that sends <c>Expect: 100-continue</c> (botocore does on every PutObject and UploadPart)
/// holds its body back until the server asks for it, and sends nothing at all once it gets a final
/// answer instead. Kestrel asks only when the body is first read; a request refused before that
/// (bad signature, no such bucket, a 409) leaves the body unsent, yet the connection stays open and
/// Kestrel takes the start of the client's next request for the rest of this one's body. Such an
/// answer therefore closes the connection, as HTTP/1.1 allows (RFC 9110 §10.1.1): the client's next
/// request starts clean on a new one.
/// </summary>
internal static class ExpectContinue
{
    public static void UseExpectContinueGuard(this WebApplication app) =>
        app.Use((context, next) =>
        {
            var request = context.Request;
            if (!request.Headers.Expect.ToString().Contains("100-continue", StringComparison.OrdinalIgnoreCase))
                return next(context);
            // The length as sent: the S3 endpoint later replaces it with an aws-chunked body's decoded length.
            var body = new EndObservingStream(request.Body, request.ContentLength);
            request.Body = body;
            context.Response.OnStarting(() =>
            {
                if (!body.ReachedEnd)
                    context.Response.Headers.Connection = "close";
                return Task.CompletedTask;
            });
            return next(context);
        });

    /// <summary>Passes reads through and notes when the body has been read to its end (or its whole length).</summary>
    private sealed class EndObservingStream(Stream inner, long? length) : Stream
    {
        private long _read;

        public bool ReachedEnd { get; private set; } = length == 0;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Observe(inner.Read(buffer, offset, count), count);

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Observe(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken), count);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Observe(await inner.ReadAsync(buffer, cancellationToken), buffer.Length);

        private int Observe(int read, int asked)
        {
            _read += read;
            if ((read == 0 && asked > 0) || _read >= length)
                ReachedEnd = true;
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
