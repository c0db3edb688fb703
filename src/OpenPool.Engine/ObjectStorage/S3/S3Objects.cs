using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Xml.Linq;
using Microsoft.AspNetCore.Http.Features;
using OpenPool.Engine.ObjectStorage.Blobs;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>What an upload's body turned out to be.</summary>
internal sealed record Received(long Size, byte[] Md5, string? ChecksumAlgorithm, string? ChecksumValue);

internal sealed partial class S3Endpoint
{

    /// <summary>
    /// Streams the request body into <paramref name="writer"/>, hashing as it goes (MD5 for the
    /// ETag, and the checksum the client asked for), and checks what the client claimed: length,
    /// Content-MD5, x-amz-checksum-* (header or trailer). Never holds more than one buffer.
    /// </summary>
    private static async Task<Received> ReceiveAsync(HttpContext context, BlobWriter writer)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = MaxUploadBytes + MaxUploadBytes / 8 + 1024 * 1024; // room for aws-chunked framing
        var payload = context.Features.Get<IS3PayloadFeature>();
        var expected = payload?.DecodedLength ?? context.Request.ContentLength;
        if (expected > MaxUploadBytes)
            throw S3Errors.EntityTooLarge(MaxUploadBytes);

        var algorithm = ChecksumAlgorithmOf(context);
        var checksum = algorithm is null ? null : Checksums.Create(algorithm);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var size = await OverlappedCopy.CopyAsync(context.Request.Body, writer.Stream, expected, (chunk, count) =>
        {
            md5.AppendData(chunk, 0, count);
            checksum?.Append(chunk.AsSpan(0, count));
        }, context.RequestAborted, MaxUploadBytes, () => throw S3Errors.EntityTooLarge(MaxUploadBytes));
        // Reading on to the end is what makes an aws-chunked body check its last chunk and read its
        // trailers; a body longer than it said it was is as wrong as a shorter one.
        if (expected is not null && size == expected && await context.Request.Body.ReadAsync(new byte[1], context.RequestAborted) != 0)
            throw S3Errors.IncompleteBody();
        if (expected is { } length && size != length)
            throw S3Errors.IncompleteBody();

        var digest = md5.GetHashAndReset();
        if (Header(context, "Content-MD5") is { } contentMd5)
        {
            byte[] claimed;
            try
            {
                claimed = Convert.FromBase64String(contentMd5);
            }
            catch (FormatException)
            {
                throw S3Errors.InvalidDigest();
            }
            if (claimed.Length != 16)
                throw S3Errors.InvalidDigest();
            if (!CryptographicOperations.FixedTimeEquals(claimed, digest))
                throw S3Errors.BadDigest();
        }

        RequireDeclaredTrailers(context, payload);
        string? value = null;
        if (algorithm is not null)
        {
            value = Convert.ToBase64String(checksum!.Final());
            var header = Checksums.HeaderOf(algorithm);
            var claimed = Header(context, header) ?? (payload?.Trailers.TryGetValue(header, out var trailer) == true ? trailer : null);
            if (claimed is not null && claimed != value)
                throw S3Errors.BadDigest($"The {algorithm} you specified did not match the calculated checksum.");
        }
        return new Received(size, digest, algorithm, value);
    }

    /// <summary>
    /// A trailer upload's trailing headers are exactly those its <c>x-amz-trailer</c> named: one left
    /// out would let a declared checksum go unchecked, one not named was never signed up for.
    /// </summary>
    private static void RequireDeclaredTrailers(HttpContext context, IS3PayloadFeature? payload)
    {
        if (payload?.ContentSha256 is not (SigV4.StreamingSignedTrailer or SigV4.StreamingUnsignedTrailer))
            return;
        var declared = (Header(context, "x-amz-trailer") ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => name.ToLowerInvariant()).ToHashSet();
        if (declared.Count == 0 || !declared.SetEquals(payload.Trailers.Keys))
            throw S3Errors.MalformedTrailer();
    }

    /// <summary>The checksum algorithm the client named (x-amz-sdk-checksum-algorithm, a checksum header, or a trailer).</summary>
    private static string? ChecksumAlgorithmOf(HttpContext context)
    {
        string? found = null;
        void Take(string algorithm)
        {
            if (found is not null && found != algorithm)
                throw S3Errors.InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
            found = algorithm;
        }
        foreach (var algorithm in Checksums.Algorithms)
        {
            if (Header(context, Checksums.HeaderOf(algorithm)) is not null)
                Take(algorithm);
        }
        if (Header(context, "x-amz-trailer") is { } trailer)
        {
            foreach (var name in trailer.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var algorithm = Checksums.Algorithms.FirstOrDefault(a => Checksums.HeaderOf(a).Equals(name, StringComparison.OrdinalIgnoreCase));
                if (algorithm is null)
                    throw S3Errors.InvalidRequest($"The trailer {name} is not supported.");
                Take(algorithm);
            }
        }
        if (Header(context, "x-amz-sdk-checksum-algorithm") is { } sdk)
        {
            // The algorithm the SDK names must be the one its header or trailer carries.
            var named = Checksums.Normalize(sdk) ?? throw S3Errors.InvalidRequest($"Checksum algorithm {sdk} is not supported.");
            if (found is not null && found != named)
                throw S3Errors.InvalidRequest($"Value for x-amz-sdk-checksum-algorithm header is invalid: {sdk} does not match the checksum sent ({found}).");
            found = named;
        }
        foreach (var (name, _) in context.Request.Headers)
        {
            if (name.StartsWith("x-amz-checksum-", StringComparison.OrdinalIgnoreCase) && !name.Equals("x-amz-checksum-mode", StringComparison.OrdinalIgnoreCase) &&
                !name.Equals("x-amz-checksum-type", StringComparison.OrdinalIgnoreCase) &&
                !Checksums.Algorithms.Any(a => Checksums.HeaderOf(a).Equals(name, StringComparison.OrdinalIgnoreCase)))
                throw S3Errors.InvalidRequest($"The checksum header {name} is not supported.");
        }
        return found;
    }

    private static WriteCondition? WriteConditionOf(HttpContext context)
    {
        var ifNoneMatch = Header(context, "If-None-Match");
        var ifMatch = Header(context, "If-Match");
        if (ifNoneMatch is not null && ifNoneMatch.Trim() != "*")
            throw S3Errors.NotImplemented("If-None-Match with a value other than * on writes");
        return ifNoneMatch is null && ifMatch is null ? null : new WriteCondition(ifNoneMatch is not null, ifMatch);
    }

    private async Task PutObjectAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        RequireBodyLength(context);
        var condition = WriteConditionOf(context);
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);
        var row = new ObjectRow { Bucket = bucket, Key = key };
        ApplyContentHeaders(context, row);

        await using var writer = blobs.Create();
        var received = await ReceiveAsync(context, writer);
        await writer.CommitAsync(context.RequestAborted);
        row.Size = received.Size;
        row.ETag = Convert.ToHexStringLower(received.Md5);
        row.ChecksumAlgorithm = received.ChecksumAlgorithm;
        row.ChecksumValue = received.ChecksumValue;
        row.ChecksumType = received.ChecksumAlgorithm is null ? null : "FULL_OBJECT";
        row.BlobId = writer.BlobId;
        row.LastModified = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await CommitRowAsync(scopeId, row, condition);

        context.Response.Headers.ETag = row.QuotedETag;
        if (row.ChecksumAlgorithm is not null)
            context.Response.Headers[Checksums.HeaderOf(row.ChecksumAlgorithm)] = row.ChecksumValue;
        context.Response.StatusCode = 200;
    }

    /// <summary>Commits the row over its new blob; the blob goes if the commit does not happen, the replaced one if it does.</summary>
    private async Task CommitRowAsync(string scopeId, ObjectRow row, WriteCondition? condition)
    {
        (string? OldBlob, long Delta) committed;
        try
        {
            // Not the request's token: once the bytes are in, a client that hangs up must not leave
            // half a decision (the commit either happens or it does not, and we must know which).
            committed = await objects.CommitAsync(scopeId, row, condition, CancellationToken.None);
        }
        catch
        {
            DeleteBlobQuietly(row.BlobId);
            throw;
        }
        DeleteBlobQuietly(committed.OldBlob);
        await ReportStoredAsync(scopeId, committed.Delta);
    }

    private async Task GetObjectAsync(HttpContext context, string scopeId, string bucket, string key, bool head)
    {
        if (context.Request.Query.ContainsKey("partNumber"))
            throw S3Errors.NotImplemented("GetObject by partNumber");
        // A concurrent overwrite may delete the blob between reading the row and opening it: read again.
        for (var attempt = 0; ; attempt++)
        {
            var row = await objects.FindAsync(scopeId, bucket, key, context.RequestAborted) ?? throw S3Errors.NoSuchKey(bucket, key);
            Stream? blob = null;
            if (!head)
            {
                try
                {
                    blob = blobs.OpenRead(row.BlobId);
                }
                catch (Exception ex) when ((ex is FileNotFoundException or DirectoryNotFoundException) && attempt < 3)
                {
                    continue;
                }
            }
            await using (blob)
                await ServeAsync(context, row, blob);
            return;
        }
    }

    private static async Task ServeAsync(HttpContext context, ObjectRow row, Stream? blob)
    {
        var response = context.Response;
        if (Preconditions(context, row) is { } status)
        {
            if (status == 412)
                throw S3Errors.PreconditionFailed(Header(context, "If-Match") is not null ? "If-Match" : "If-Unmodified-Since");
            response.StatusCode = 304;
            response.Headers.ETag = row.QuotedETag;
            response.Headers.LastModified = S3Xml.HttpDate(row.LastModified);
            return;
        }

        long offset = 0, length = row.Size;
        if (Header(context, "Range") is { } range && ParseRange(range, row.Size) is { } parsed)
        {
            if (parsed.Start < 0)
                throw new S3Exception(416, "InvalidRange", "The requested range is not satisfiable") { Details = [new("RangeRequested", range), new("ActualObjectSize", row.Size.ToString(CultureInfo.InvariantCulture))] };
            offset = parsed.Start;
            length = parsed.End - parsed.Start + 1;
            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {parsed.Start}-{parsed.End}/{row.Size}";
        }
        else
        {
            response.StatusCode = 200;
        }

        var query = context.Request.Query;
        response.Headers.ETag = row.QuotedETag;
        response.Headers.LastModified = S3Xml.HttpDate(row.LastModified);
        response.Headers.AcceptRanges = "bytes";
        response.ContentLength = length;
        response.ContentType = Override(query, "response-content-type", row.ContentType) ?? "binary/octet-stream";
        SetIf(response, "Content-Encoding", Override(query, "response-content-encoding", row.ContentEncoding));
        SetIf(response, "Content-Disposition", Override(query, "response-content-disposition", row.ContentDisposition));
        SetIf(response, "Content-Language", Override(query, "response-content-language", row.ContentLanguage));
        SetIf(response, "Cache-Control", Override(query, "response-cache-control", row.CacheControl));
        SetIf(response, "Expires", Override(query, "response-expires", row.Expires));
        if (row.PartsCount is { } parts)
            response.Headers["x-amz-mp-parts-count"] = parts.ToString(CultureInfo.InvariantCulture);
        if (row.UserMetadata is not null)
        {
            foreach (var (name, value) in JsonSerializer.Deserialize<Dictionary<string, string>>(row.UserMetadata)!)
                response.Headers["x-amz-meta-" + name] = value;
        }
        if (row.ChecksumAlgorithm is not null && string.Equals(Header(context, "x-amz-checksum-mode"), "ENABLED", StringComparison.OrdinalIgnoreCase) &&
            response.StatusCode == 200)
        {
            response.Headers[Checksums.HeaderOf(row.ChecksumAlgorithm)] = row.ChecksumValue;
            response.Headers["x-amz-checksum-type"] = row.ChecksumType ?? "FULL_OBJECT";
        }

        if (blob is null || length == 0)
            return;
        blob.Seek(offset, SeekOrigin.Begin);
        if (await OverlappedCopy.CopyAsync(blob, response.Body, length, null, context.RequestAborted) != length)
            throw new IOException($"Blob {row.BlobId} is shorter than its object's size.");
    }

    /// <summary>
    /// An upload names its length (S3 answers 411 otherwise): a request with neither Content-Length
    /// nor a chunked body has no body at all, and storing it as an empty object would hide a client
    /// that lost its payload.
    /// </summary>
    private static void RequireBodyLength(HttpContext context)
    {
        if (context.Request.ContentLength is null && !context.Request.Headers.ContainsKey("Transfer-Encoding"))
            throw S3Errors.MissingContentLength();
    }

    /// <summary>
    /// A <c>response-*</c> query override, or the stored value. Overrides come from the URL, so they
    /// are checked before they become headers: control characters (a header split) are refused, and
    /// so is anything not ASCII, except in Content-Disposition, whose file names are often not
    /// English and which is sent as UTF-8 (S3Services lets Kestrel encode that one header so).
    /// </summary>
    private static string? Override(IQueryCollection query, string name, string? stored)
    {
        if (!query.TryGetValue(name, out var values) || values.Count == 0 || values[0] is not { } value)
            return stored;
        foreach (var ch in value)
        {
            if (char.IsControl(ch) || (ch > 0x7e && name != "response-content-disposition"))
                throw S3Errors.InvalidArgument($"The value of {name} holds a character a header cannot carry.", name, value);
        }
        return value;
    }

    private static void SetIf(HttpResponse response, string name, string? value)
    {
        if (value is not null)
            response.Headers[name] = value;
    }

    /// <summary>RFC 9110's order: If-Match, else If-Unmodified-Since (412); If-None-Match, else If-Modified-Since (304).</summary>
    private static int? Preconditions(HttpContext context, ObjectRow row)
    {
        var modified = DateTimeOffset.FromUnixTimeMilliseconds(row.LastModified);
        var modifiedSeconds = modified.ToUnixTimeSeconds();
        if (Header(context, "If-Match") is { } ifMatch)
        {
            if (!ObjectStore.ETagMatches(ifMatch, row.ETag))
                return 412;
        }
        else if (HttpDate(Header(context, "If-Unmodified-Since")) is { } unmodifiedSince && modifiedSeconds > unmodifiedSince.ToUnixTimeSeconds())
        {
            return 412;
        }
        if (Header(context, "If-None-Match") is { } ifNoneMatch)
        {
            if (ObjectStore.ETagMatches(ifNoneMatch, row.ETag))
                return 304;
        }
        else if (HttpDate(Header(context, "If-Modified-Since")) is { } modifiedSince && modifiedSeconds <= modifiedSince.ToUnixTimeSeconds())
        {
            return 304;
        }
        return null;
    }

    private static DateTimeOffset? HttpDate(string? value) =>
        value is not null && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date) ? date : null;

    /// <summary>
    /// One byte range (<c>bytes=a-b</c>, <c>bytes=a-</c>, <c>bytes=-n</c>), clamped to the object;
    /// Start −1 when unsatisfiable; null when the header is not a single range S3 honours (then the
    /// whole object is sent, as S3 does).
    /// </summary>
    internal static (long Start, long End)? ParseRange(string header, long size)
    {
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase))
            return null;
        var spec = header[6..].Trim();
        if (spec.Contains(','))
            return null;
        var dash = spec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
            return null;
        var first = spec[..dash].Trim();
        var last = spec[(dash + 1)..].Trim();
        if (first.Length == 0)
        {
            if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var suffix))
                return null;
            if (suffix == 0 || size == 0)
                return (-1, -1);
            return (Math.Max(0, size - suffix), size - 1);
        }
        if (!long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            return null;
        long end = size - 1;
        if (last.Length > 0)
        {
            if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out end) || end < start)
                return null;
            end = Math.Min(end, size - 1);
        }
        if (start >= size)
            return (-1, -1);
        return (start, end);
    }

    private async Task DeleteObjectAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        var (oldBlob, delta) = await objects.DeleteAsync(scopeId, bucket, key, CancellationToken.None);
        DeleteBlobQuietly(oldBlob);
        await ReportStoredAsync(scopeId, delta);
        context.Response.StatusCode = 204;
    }

    private async Task DeleteObjectsAsync(HttpContext context, string scopeId, string bucket)
    {
        if (Header(context, "Content-MD5") is null && !context.Request.Headers.Keys.Any(h => h.StartsWith("x-amz-checksum-", StringComparison.OrdinalIgnoreCase))
            && Header(context, "x-amz-sdk-checksum-algorithm") is null && Header(context, "x-amz-trailer") is null)
            throw S3Errors.InvalidRequest("Missing required header for this request: Content-MD5");
        var body = await ReadSmallBodyAsync(context, 2 * 1024 * 1024);
        // MD5 is what S3's Content-MD5 integrity header is made of, not a security measure here.
#pragma warning disable CA5351
        if (Header(context, "Content-MD5") is { } md5 && md5 != Convert.ToBase64String(MD5.HashData(body)))
#pragma warning restore CA5351
            throw S3Errors.BadDigest();
        foreach (var algorithm in Checksums.Algorithms)
        {
            if (Header(context, Checksums.HeaderOf(algorithm)) is { } claimed)
            {
                var sum = Checksums.Create(algorithm);
                sum.Append(body);
                if (claimed != Convert.ToBase64String(sum.Final()))
                    throw S3Errors.BadDigest($"The {algorithm} you specified did not match the calculated checksum.");
            }
        }
        if (body.Length == 0)
            throw S3Errors.MissingRequestBody();
        var root = S3XmlBody.Parse(body, "Delete");
        var quiet = S3XmlBody.Flag(root, "Quiet");
        // S3's schema: one to 1,000 objects, each with a key of at least one character.
        var keys = root.Elements().Where(e => e.Name.LocalName == "Object")
            .Select(o => (Key: S3XmlBody.Child(o, "Key") is { Length: > 0 } key ? key : throw S3Errors.MalformedXml(), VersionId: S3XmlBody.Child(o, "VersionId")))
            .ToList();
        if (keys.Count is 0 or > 1000)
            throw S3Errors.MalformedXml();
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);

        var xml = new S3Xml("DeleteResult");
        foreach (var (key, versionId) in keys)
        {
            try
            {
                // As for DeleteObject: only the "null" version exists in an unversioned bucket.
                if (versionId is not null && versionId != "null")
                    throw S3Errors.InvalidVersionId(versionId);
                var (oldBlob, delta) = await objects.DeleteAsync(scopeId, bucket, S3Request.Checked(key), CancellationToken.None);
                DeleteBlobQuietly(oldBlob);
                await ReportStoredAsync(scopeId, delta);
                if (!quiet)
                {
                    xml.Open("Deleted").Element("Key", key);
                    if (versionId is not null)
                        xml.Element("VersionId", versionId);
                    xml.Close();
                }
            }
            catch (S3Exception error)
            {
                xml.Open("Error").Element("Key", key);
                if (versionId is not null)
                    xml.Element("VersionId", versionId);
                xml.Element("Code", error.Code).Element("Message", error.Message).Close();
            }
        }
        await S3Xml.WriteAsync(context, 200, xml);
    }

    /// <summary>x-amz-copy-source: <c>[/]bucket/key[?versionId=…]</c>, percent-encoded; only the scope's own buckets.</summary>
    private async Task<(ObjectRow Row, string Bucket, string Key)> CopySourceAsync(HttpContext context, string scopeId)
    {
        var source = Header(context, "x-amz-copy-source")?.Trim()
            ?? throw S3Errors.InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey", "x-amz-copy-source", "");
        var question = source.IndexOf('?', StringComparison.Ordinal);
        if (question >= 0)
        {
            var version = source[(question + 1)..];
            if (version.StartsWith("versionId=", StringComparison.Ordinal) && version != "versionId=null")
                throw S3Errors.NotImplemented("Copying a version other than null");
            source = source[..question];
        }
        var decoded = S3Request.Decode(source).TrimStart('/');
        var slash = decoded.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == decoded.Length - 1)
            throw S3Errors.InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey", "x-amz-copy-source", Header(context, "x-amz-copy-source"));
        var bucket = decoded[..slash];
        var key = S3Request.Checked(decoded[(slash + 1)..]);
        var row = await objects.FindAsync(scopeId, bucket, key, context.RequestAborted) ?? throw S3Errors.NoSuchKey(bucket, key);

        var etag = row.ETag;
        var modified = DateTimeOffset.FromUnixTimeMilliseconds(row.LastModified).ToUnixTimeSeconds();
        var ifMatch = Header(context, "x-amz-copy-source-if-match");
        var ifNoneMatch = Header(context, "x-amz-copy-source-if-none-match");
        var ifUnmodified = HttpDate(Header(context, "x-amz-copy-source-if-unmodified-since"));
        var ifModified = HttpDate(Header(context, "x-amz-copy-source-if-modified-since"));
        if (ifMatch is not null && !ObjectStore.ETagMatches(ifMatch, etag))
            throw S3Errors.PreconditionFailed("x-amz-copy-source-If-Match");
        if (ifMatch is null && ifUnmodified is { } u && modified > u.ToUnixTimeSeconds())
            throw S3Errors.PreconditionFailed("x-amz-copy-source-If-Unmodified-Since");
        if (ifNoneMatch is not null && ObjectStore.ETagMatches(ifNoneMatch, etag))
            throw S3Errors.PreconditionFailed("x-amz-copy-source-If-None-Match");
        if (ifNoneMatch is null && ifModified is { } m && modified <= m.ToUnixTimeSeconds())
            throw S3Errors.PreconditionFailed("x-amz-copy-source-If-Modified-Since");
        return (row, bucket, key);
    }

    /// <summary>Copies bytes of a committed blob into a new one (blobs are never shared, so each row owns its blob).</summary>
    private async Task<(long Size, byte[] Md5, string? ChecksumValue)> CopyBlobAsync(string blobId, long offset, long length, BlobWriter writer, string? algorithm, CancellationToken ct)
    {
        await using var source = blobs.OpenRead(blobId);
        source.Seek(offset, SeekOrigin.Begin);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var checksum = algorithm is null ? null : Checksums.Create(algorithm);
        var copied = await OverlappedCopy.CopyAsync(source, writer.Stream, length, (chunk, count) =>
        {
            md5.AppendData(chunk, 0, count);
            checksum?.Append(chunk.AsSpan(0, count));
        }, ct);
        if (copied != length)
            throw new IOException($"Blob {blobId} is shorter than its object's size.");
        return (length, md5.GetHashAndReset(), checksum is null ? null : Convert.ToBase64String(checksum.Final()));
    }

    private async Task CopyObjectAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        var condition = WriteConditionOf(context);
        var (source, sourceBucket, sourceKey) = await CopySourceAsync(context, scopeId);
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);
        var directive = Header(context, "x-amz-metadata-directive") ?? "COPY";
        if (directive is not ("COPY" or "REPLACE"))
            throw S3Errors.InvalidArgument("Unknown metadata directive.", "x-amz-metadata-directive", directive);
        if (directive == "COPY" && sourceBucket == bucket && sourceKey == key)
            throw S3Errors.InvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");

        var row = new ObjectRow { Bucket = bucket, Key = key };
        if (directive == "REPLACE")
        {
            ApplyContentHeaders(context, row);
        }
        else
        {
            row.CopyHeadersFrom(source);
        }
        var algorithm = Checksums.Normalize(Header(context, "x-amz-checksum-algorithm")) ?? (source.ChecksumType == "FULL_OBJECT" ? source.ChecksumAlgorithm : null);
        await using var writer = blobs.Create();
        var copied = await CopyBlobAsync(source.BlobId, 0, source.Size, writer, algorithm, context.RequestAborted);
        await writer.CommitAsync(context.RequestAborted);
        row.Size = copied.Size;
        // A copy of a multipart object is one part: its ETag is the MD5 of its bytes.
        row.ETag = Convert.ToHexStringLower(copied.Md5);
        row.ChecksumAlgorithm = algorithm;
        row.ChecksumValue = copied.ChecksumValue;
        row.ChecksumType = algorithm is null ? null : "FULL_OBJECT";
        row.BlobId = writer.BlobId;
        row.LastModified = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await CommitRowAsync(scopeId, row, condition);

        var xml = new S3Xml("CopyObjectResult").Element("ETag", row.QuotedETag).Element("LastModified", S3Xml.Timestamp(row.LastModified));
        if (algorithm is not null)
            xml.Element("Checksum" + algorithm, row.ChecksumValue);
        await S3Xml.WriteAsync(context, 200, xml);
    }
}
