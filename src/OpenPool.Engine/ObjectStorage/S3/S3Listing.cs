using System.Globalization;
using System.Text;

namespace OpenPool.Engine.ObjectStorage.S3;

internal enum ListKind
{
    V1,
    V2,
    Versions,
}

internal sealed partial class S3Endpoint
{
    /// <summary>
    /// ListObjects, ListObjectsV2 and ListObjectVersions (unversioned: each object once, version
    /// "null", latest). Keys come in UTF-8 byte order from an index range scan; a common prefix is
    /// skipped over in one seek, so a delimiter over a million keys costs one query per prefix.
    /// </summary>
    private async Task ListObjectsAsync(HttpContext context, string scopeId, string bucket, ListKind kind)
    {
        var query = context.Request.Query;
        string? Q(string name) => query.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null;
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);

        var prefix = Q("prefix") ?? "";
        var delimiter = Q("delimiter");
        if (delimiter == "")
            delimiter = null;
        var encoding = Q("encoding-type");
        if (encoding is not null && encoding != "url")
            throw S3Errors.InvalidArgument("Invalid Encoding Method specified in Request", "encoding-type", encoding);
        var maxKeys = 1000;
        if (Q("max-keys") is { } max)
        {
            if (!int.TryParse(max, NumberStyles.Integer, CultureInfo.InvariantCulture, out maxKeys) || maxKeys < 0)
                throw S3Errors.InvalidArgument("Provided max-keys not an integer or within integer range", "max-keys", max);
            maxKeys = Math.Min(maxKeys, 1000);
        }

        // Where to start: strictly after a key (marker, start-after, a token for a key), or from a
        // bound (a token for a common prefix: the least key past everything under it).
        string? after = null, from = null;
        var token = Q("continuation-token");
        if (kind == ListKind.V2)
        {
            after = Q("start-after");
            if (token is not null)
            {
                (after, from) = ReadToken(token);
            }
        }
        else
        {
            after = kind == ListKind.Versions ? Q("key-marker") : Q("marker");
            if (after == "")
                after = null;
            if (after is not null && delimiter is not null && after.EndsWith(delimiter, StringComparison.Ordinal) && after.StartsWith(prefix, StringComparison.Ordinal)
                && ObjectStore.PrefixUpperBound(after) is { } skip)
            {
                from = skip;
            }
        }

        var contents = new List<ObjectRow>();
        var prefixes = new List<string>();
        var truncated = false;
        string? lastEmitted = null;
        var lastWasPrefix = false;
        while (!truncated)
        {
            // One row beyond what the page still has room for tells whether it is truncated, without a second query.
            var limit = maxKeys - (contents.Count + prefixes.Count) + 1;
            var batch = await objects.ListAsync(bucket, prefix, after, from, limit, context.RequestAborted);
            if (batch.Count == 0)
                break;
            var skipped = false;
            foreach (var row in batch)
            {
                string? common = null;
                if (delimiter is not null)
                {
                    var at = row.Key.IndexOf(delimiter, prefix.Length, StringComparison.Ordinal);
                    if (at >= 0)
                        common = row.Key[..(at + delimiter.Length)];
                }
                if (common is not null && common == lastEmitted && lastWasPrefix)
                    continue;
                if (contents.Count + prefixes.Count >= maxKeys)
                {
                    truncated = true;
                    break;
                }
                if (common is not null)
                {
                    prefixes.Add(common);
                    lastEmitted = common;
                    lastWasPrefix = true;
                    if (ObjectStore.PrefixUpperBound(common) is { } upper)
                    {
                        // Seek past everything under this prefix instead of reading it.
                        after = null;
                        from = upper;
                        skipped = true;
                        break;
                    }
                }
                else
                {
                    contents.Add(row);
                    lastEmitted = row.Key;
                    lastWasPrefix = false;
                }
            }
            if (truncated || skipped)
                continue;
            if (batch.Count < limit)
                break;
            after = batch[^1].Key;
            from = null;
        }

        string Enc(string value) => encoding == "url" ? UrlEncode(value) : value;
        var root = kind switch { ListKind.V2 => "ListBucketResult", ListKind.V1 => "ListBucketResult", _ => "ListVersionsResult" };
        var xml = new S3Xml(root).Element("Name", bucket).Element("Prefix", Enc(prefix));
        if (kind == ListKind.V2)
        {
            xml.Element("KeyCount", contents.Count + prefixes.Count).Element("MaxKeys", maxKeys);
            if (token is not null)
                xml.Element("ContinuationToken", token);
            if (Q("start-after") is { } startAfter)
                xml.Element("StartAfter", Enc(startAfter));
        }
        else if (kind == ListKind.V1)
        {
            xml.Element("Marker", Enc(Q("marker") ?? "")).Element("MaxKeys", maxKeys);
        }
        else
        {
            xml.Element("KeyMarker", Enc(Q("key-marker") ?? "")).Element("VersionIdMarker", Q("version-id-marker") ?? "").Element("MaxKeys", maxKeys);
        }
        if (delimiter is not null)
            xml.Element("Delimiter", Enc(delimiter));
        if (encoding is not null)
            xml.Element("EncodingType", encoding);
        xml.Element("IsTruncated", truncated);
        if (truncated && lastEmitted is not null)
        {
            if (kind == ListKind.V2)
                xml.Element("NextContinuationToken", WriteToken(lastEmitted, lastWasPrefix));
            else if (kind == ListKind.V1)
                xml.Element("NextMarker", Enc(lastEmitted));
            else
                xml.Element("NextKeyMarker", Enc(lastEmitted)).Element("NextVersionIdMarker", "null");
        }
        var withOwner = kind != ListKind.V2 || string.Equals(Q("fetch-owner"), "true", StringComparison.OrdinalIgnoreCase);
        foreach (var row in contents)
        {
            xml.Open(kind == ListKind.Versions ? "Version" : "Contents").Element("Key", Enc(row.Key));
            if (kind == ListKind.Versions)
                xml.Element("VersionId", "null").Element("IsLatest", true);
            xml.Element("LastModified", S3Xml.Timestamp(row.LastModified)).Element("ETag", row.QuotedETag);
            if (row.ChecksumAlgorithm is not null)
                xml.Element("ChecksumAlgorithm", row.ChecksumAlgorithm).Element("ChecksumType", row.ChecksumType ?? "FULL_OBJECT");
            xml.Element("Size", row.Size);
            if (withOwner)
                Owner(xml, scopeId);
            xml.Element("StorageClass", "STANDARD").Close();
        }
        foreach (var common in prefixes)
            xml.Open("CommonPrefixes").Element("Prefix", Enc(common)).Close();
        await S3Xml.WriteAsync(context, 200, xml);
    }

    /// <summary>A continuation token: opaque to clients, it says where the next page starts.</summary>
    private static string WriteToken(string last, bool wasPrefix)
    {
        var position = wasPrefix && ObjectStore.PrefixUpperBound(last) is { } upper ? "f" + upper : "a" + last;
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(position));
    }

    private static (string? After, string? From) ReadToken(string token)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(token));
            if (text.Length > 0 && text[0] == 'a')
                return (S3Request.Checked(text[1..]), null);
            if (text.Length > 0 && text[0] == 'f')
                return (null, text[1..]);
        }
        catch (FormatException)
        {
        }
        throw S3Errors.InvalidArgument("The continuation token provided is incorrect", "continuation-token", token);
    }

    /// <summary>encoding-type=url: S3 percent-encodes everything but unreserved characters and '/'.</summary>
    private static string UrlEncode(string value)
    {
        var text = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~' or (byte)'/')
                text.Append((char)b);
            else
                text.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }
}
