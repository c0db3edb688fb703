using System.Globalization;
using System.Text;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// S3's XML, written by hand: a small, forward-only writer that escapes text the way S3 does
/// (characters XML 1.0 cannot carry, in keys, become character references), which XmlWriter refuses.
/// </summary>
internal sealed class S3Xml
{
    public const string Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";
    private readonly StringBuilder _text = new("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    private readonly Stack<string> _open = new();

    public S3Xml(string root, bool withNamespace = true)
    {
        _text.Append('<').Append(root);
        if (withNamespace)
            _text.Append(" xmlns=\"").Append(Namespace).Append('"');
        _text.Append('>');
        _open.Push(root);
    }

    public S3Xml Open(string name)
    {
        _text.Append('<').Append(name).Append('>');
        _open.Push(name);
        return this;
    }

    /// <summary>Opens an element whose start tag carries attributes; <paramref name="name"/> closes it.</summary>
    public S3Xml RawOpen(string startTag, string name)
    {
        _text.Append('<').Append(startTag).Append('>');
        _open.Push(name);
        return this;
    }

    /// <summary>Text inside the element open last.</summary>
    public S3Xml Text(string value)
    {
        Escape(_text, value);
        return this;
    }

    public S3Xml Close()
    {
        _text.Append("</").Append(_open.Pop()).Append('>');
        return this;
    }

    public S3Xml Element(string name, string? value)
    {
        if (value is null)
            return this;
        _text.Append('<').Append(name).Append('>');
        Escape(_text, value);
        _text.Append("</").Append(name).Append('>');
        return this;
    }

    public S3Xml Element(string name, long value) => Element(name, value.ToString(CultureInfo.InvariantCulture));
    public S3Xml Element(string name, bool value) => Element(name, value ? "true" : "false");

    public override string ToString()
    {
        while (_open.Count > 0)
            Close();
        return _text.ToString();
    }

    public static string Timestamp(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string HttpDate(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("R", CultureInfo.InvariantCulture);

    private static void Escape(StringBuilder text, string value)
    {
        foreach (var ch in value)
        {
            switch (ch)
            {
                case '&': text.Append("&amp;"); break;
                case '<': text.Append("&lt;"); break;
                case '>': text.Append("&gt;"); break;
                case '"': text.Append("&quot;"); break;
                case '\'': text.Append("&apos;"); break;
                case < ' ' or '\u007f':
                    text.Append("&#x").Append(((int)ch).ToString("X", CultureInfo.InvariantCulture)).Append(';');
                    break;
                default: text.Append(ch); break;
            }
        }
    }

    public static async Task WriteAsync(HttpContext context, int status, S3Xml xml)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/xml";
        var bytes = Encoding.UTF8.GetBytes(xml.ToString());
        context.Response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
            await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    /// <summary>S3's error body: Code, Message, the resource, the request id, and any details.</summary>
    public static async Task WriteErrorAsync(HttpContext context, S3Exception error)
    {
        if (context.Response.HasStarted)
            return;
        context.Response.Headers.Clear();
        var requestId = RequestId(context);
        context.Response.Headers["x-amz-request-id"] = requestId;
        var xml = new S3Xml("Error", withNamespace: false)
            .Element("Code", error.Code)
            .Element("Message", error.Message);
        foreach (var (name, value) in error.Details)
            xml.Element(name, value);
        xml.Element("Resource", context.Request.Path.Value)
           .Element("RequestId", requestId);
        await WriteAsync(context, error.Status, xml);
    }

    /// <summary>One id per request, in the header S3 clients log and in error bodies.</summary>
    public static string RequestId(HttpContext context)
    {
        if (context.Items.TryGetValue("s3-request-id", out var existing) && existing is string id)
            return id;
        id = Data.Ids.Random(16).ToUpperInvariant();
        context.Items["s3-request-id"] = id;
        return id;
    }
}

/// <summary>The XML request bodies S3 takes (CreateBucketConfiguration, Delete, CompleteMultipartUpload).</summary>
internal static class S3XmlBody
{
    private static readonly System.Xml.XmlReaderSettings Settings = new()
    {
        // S3's schemas have no DTD: one in a request is refused rather than expanded or resolved.
        DtdProcessing = System.Xml.DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true,
    };

    /// <summary>S3's request schemas nest four levels at most; far deeper bodies only cost CPU to refuse.</summary>
    private const int MaxDepth = 8;

    /// <summary>The root element, which must be named <paramref name="rootName"/>; anything else is MalformedXML.</summary>
    public static System.Xml.Linq.XElement Parse(byte[] body, string rootName)
    {
        try
        {
            // One cheap pass first: building a tree of a hundred thousand nested elements takes
            // minutes, and a tenant can send that in under a megabyte.
            using (var scan = System.Xml.XmlReader.Create(new MemoryStream(body), Settings))
            {
                while (scan.Read())
                {
                    if (scan.Depth > MaxDepth)
                        throw S3Errors.MalformedXml();
                }
            }
            using var reader = System.Xml.XmlReader.Create(new MemoryStream(body), Settings);
            var root = System.Xml.Linq.XDocument.Load(reader).Root;
            if (root is null || root.Name.LocalName != rootName)
                throw S3Errors.MalformedXml();
            return root;
        }
        catch (System.Xml.XmlException)
        {
            throw S3Errors.MalformedXml();
        }
    }

    /// <summary>The text of the child element named <paramref name="name"/>, or null when there is none; twice is MalformedXML.</summary>
    public static string? Child(System.Xml.Linq.XElement parent, string name)
    {
        var matches = parent.Elements().Where(e => e.Name.LocalName == name).Take(2).ToList();
        return matches.Count switch
        {
            0 => null,
            1 => matches[0].Value,
            _ => throw S3Errors.MalformedXml(),
        };
    }

    /// <summary>An xs:boolean child (absent: false); any other text is MalformedXML, as S3 answers.</summary>
    public static bool Flag(System.Xml.Linq.XElement parent, string name) => Child(parent, name) switch
    {
        null or "false" or "0" => false,
        "true" or "1" => true,
        _ => throw S3Errors.MalformedXml(),
    };
}

/// <summary>S3's error codes, with their status and wording.</summary>
internal static class S3Errors
{
    public static S3Exception NoSuchBucket(string bucket) =>
        new(404, "NoSuchBucket", "The specified bucket does not exist") { Details = [new("BucketName", bucket)] };
    public static S3Exception NoSuchKey(string bucket, string key) =>
        new(404, "NoSuchKey", "The specified key does not exist.") { Details = [new("BucketName", bucket), new("Key", key)] };
    public static S3Exception NoSuchUpload(string uploadId) =>
        new(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.") { Details = [new("UploadId", uploadId)] };
    public static S3Exception NotImplemented(string what) =>
        new(501, "NotImplemented", $"{what} is not implemented by this endpoint.");
    public static S3Exception InvalidArgument(string message, string? name = null, string? value = null) =>
        new(400, "InvalidArgument", message) { Details = name is null ? [] : [new("ArgumentName", name), new("ArgumentValue", value ?? "")] };
    public static S3Exception InvalidRequest(string message) => new(400, "InvalidRequest", message);
    public static S3Exception MalformedXml() =>
        new(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
    public static S3Exception AccessDenied(string message = "Access Denied") => new(403, "AccessDenied", message);
    public static S3Exception PreconditionFailed(string condition) =>
        new(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold") { Details = [new("Condition", condition)] };
    public static S3Exception BadDigest(string message = "The Content-MD5 you specified did not match what we received.") => new(400, "BadDigest", message);
    public static S3Exception InvalidDigest() => new(400, "InvalidDigest", "The Content-MD5 you specified is not valid.");
    public static S3Exception IncompleteBody() => new(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.");
    public static S3Exception EntityTooLarge(long max) =>
        new(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size") { Details = [new("MaxSizeAllowed", max.ToString(CultureInfo.InvariantCulture))] };
    public static S3Exception MalformedTrailer() =>
        new(400, "MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.");
    public static S3Exception MissingRequestBody() => new(400, "MissingRequestBodyError", "Request Body is empty");
    public static S3Exception InvalidVersionId(string versionId) => InvalidArgument("Invalid version id specified", "versionId", versionId);
    public static S3Exception MissingContentLength() => new(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    public static S3Exception MethodNotAllowed(string method) =>
        new(405, "MethodNotAllowed", "The specified method is not allowed against this resource.") { Details = [new("Method", method)] };
}
