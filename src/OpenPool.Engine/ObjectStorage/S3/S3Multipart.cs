using System.Globalization;
using System.Security.Cryptography;
using System.Xml.Linq;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage.S3;

internal sealed partial class S3Endpoint
{
    private const long MinPartBytes = 5L * 1024 * 1024;
    private const int MaxPartNumber = 10000;

    private MultipartStore Multipart => services.GetRequiredService<MultipartStore>();

    private async Task CreateMultipartUploadAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);
        var algorithm = Header(context, "x-amz-checksum-algorithm") is { } named
            ? Checksums.Normalize(named) ?? throw S3Errors.InvalidRequest($"Checksum algorithm {named} is not supported.")
            : null;
        var upload = new UploadRow
        {
            UploadId = Ids.Random(40), Bucket = bucket, Key = key, InitiatedAt = clock.GetUtcNow().ToUnixTimeMilliseconds(),
            ChecksumAlgorithm = algorithm,
        };
        ApplyContentHeaders(context, upload);
        await Multipart.CreateAsync(upload, context.RequestAborted);
        if (algorithm is not null)
        {
            context.Response.Headers["x-amz-checksum-algorithm"] = algorithm;
            context.Response.Headers["x-amz-checksum-type"] = "COMPOSITE";
        }
        await S3Xml.WriteAsync(context, 200, new S3Xml("InitiateMultipartUploadResult").Element("Bucket", bucket).Element("Key", key).Element("UploadId", upload.UploadId));
    }

    private static int PartNumberOf(HttpContext context)
    {
        var value = context.Request.Query["partNumber"].ToString();
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is < 1 or > MaxPartNumber)
            throw S3Errors.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", value);
        return number;
    }

    private async Task UploadPartAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        if (!context.Request.Headers.ContainsKey("x-amz-copy-source"))
            RequireBodyLength(context);
        var uploadId = context.Request.Query["uploadId"].ToString();
        var partNumber = PartNumberOf(context);
        var upload = await Multipart.FindAsync(scopeId, bucket, key, uploadId, context.RequestAborted);
        var part = new PartRow { UploadId = uploadId, PartNumber = partNumber };

        await using var writer = blobs.Create();
        S3Xml? copyResult = null;
        // Present but empty is a copy with a bad source (CopySourceAsync says so), not a plain upload.
        if (context.Request.Headers.ContainsKey("x-amz-copy-source"))
        {
            var (source, _, _) = await CopySourceAsync(context, scopeId);
            long offset = 0, length = source.Size;
            if (Header(context, "x-amz-copy-source-range") is { } range)
            {
                // Unlike a GET's Range, a copy range is never cut down to the object: both ends must lie inside it.
                var bounds = range.StartsWith("bytes=", StringComparison.Ordinal) ? range[6..].Split('-') : [];
                if (bounds.Length != 2 || !long.TryParse(bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                    || !long.TryParse(bounds[1], NumberStyles.None, CultureInfo.InvariantCulture, out var last) || first > last)
                    throw S3Errors.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                        "x-amz-copy-source-range", range);
                if (last >= source.Size)
                    throw S3Errors.InvalidArgument($"Range specified is not valid for source object of size: {source.Size}", "x-amz-copy-source-range", range);
                offset = first;
                length = last - first + 1;
            }
            if (length > MaxUploadBytes)
                throw S3Errors.EntityTooLarge(MaxUploadBytes);
            var copied = await CopyBlobAsync(source.BlobId, offset, length, writer, upload.ChecksumAlgorithm, context.RequestAborted);
            part.Size = copied.Size;
            part.ETag = Convert.ToHexStringLower(copied.Md5);
            part.ChecksumValue = copied.ChecksumValue;
            copyResult = new S3Xml("CopyPartResult");
        }
        else
        {
            var received = await ReceiveAsync(context, writer);
            if (upload.ChecksumAlgorithm is not null && received.ChecksumAlgorithm is not null && received.ChecksumAlgorithm != upload.ChecksumAlgorithm)
                throw S3Errors.InvalidRequest($"Checksum Type mismatch occurred, expected checksum Type: {upload.ChecksumAlgorithm.ToLowerInvariant()}, actual checksum Type: {received.ChecksumAlgorithm.ToLowerInvariant()}");
            part.Size = received.Size;
            part.ETag = Convert.ToHexStringLower(received.Md5);
            part.ChecksumValue = received.ChecksumAlgorithm == upload.ChecksumAlgorithm ? received.ChecksumValue : null;
        }
        await writer.CommitAsync(context.RequestAborted);
        part.BlobId = writer.BlobId;
        part.LastModified = clock.GetUtcNow().ToUnixTimeMilliseconds();
        (string? OldBlob, long OldSize) replaced;
        try
        {
            replaced = await Multipart.PutPartAsync(part, CancellationToken.None);
        }
        catch
        {
            DeleteBlobQuietly(part.BlobId);
            throw;
        }
        DeleteBlobQuietly(replaced.OldBlob);
        await ReportStoredAsync(scopeId, part.Size - replaced.OldSize);

        var quoted = "\"" + part.ETag + "\"";
        if (copyResult is not null)
        {
            copyResult.Element("ETag", quoted).Element("LastModified", S3Xml.Timestamp(part.LastModified));
            if (upload.ChecksumAlgorithm is not null)
                copyResult.Element("Checksum" + upload.ChecksumAlgorithm, part.ChecksumValue);
            await S3Xml.WriteAsync(context, 200, copyResult);
            return;
        }
        context.Response.Headers.ETag = quoted;
        if (upload.ChecksumAlgorithm is not null && part.ChecksumValue is not null)
            context.Response.Headers[Checksums.HeaderOf(upload.ChecksumAlgorithm)] = part.ChecksumValue;
        context.Response.StatusCode = 200;
    }

    private async Task CompleteMultipartUploadAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        var uploadId = context.Request.Query["uploadId"].ToString();
        var condition = WriteConditionOf(context);
        var upload = await Multipart.FindAsync(scopeId, bucket, key, uploadId, context.RequestAborted);
        var body = await ReadSmallBodyAsync(context, 4 * 1024 * 1024);
        var root = S3XmlBody.Parse(body, "CompleteMultipartUpload");
        var requested = new List<(int Number, string ETag)>();
        foreach (var element in root.Elements().Where(e => e.Name.LocalName == "Part"))
        {
            var number = S3XmlBody.Child(element, "PartNumber");
            var etag = S3XmlBody.Child(element, "ETag");
            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || etag is null)
                throw S3Errors.MalformedXml();
            requested.Add((n, etag.Trim().Trim('"')));
        }
        if (requested.Count == 0)
            throw S3Errors.MalformedXml();
        for (var i = 1; i < requested.Count; i++)
        {
            if (requested[i].Number <= requested[i - 1].Number)
                throw new S3Exception(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.");
        }
        var stored = (await Multipart.PartsAsync(uploadId, 0, MaxPartNumber, context.RequestAborted)).ToDictionary(p => p.PartNumber);
        var parts = new List<PartRow>();
        foreach (var (number, etag) in requested)
        {
            if (!stored.TryGetValue(number, out var part) || part.ETag != etag)
                throw new S3Exception(400, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
                    { Details = [new("UploadId", uploadId), new("PartNumber", number.ToString(CultureInfo.InvariantCulture)), new("ETag", etag)] };
            parts.Add(part);
        }
        for (var i = 0; i < parts.Count - 1; i++)
        {
            if (parts[i].Size < MinPartBytes)
                throw new S3Exception(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
                    { Details = [new("ProposedSize", parts[i].Size.ToString(CultureInfo.InvariantCulture)), new("MinSizeAllowed", MinPartBytes.ToString(CultureInfo.InvariantCulture)), new("PartNumber", parts[i].PartNumber.ToString(CultureInfo.InvariantCulture)), new("ETag", parts[i].ETag)] };
        }

        // The object's bytes are its parts' bytes end to end, in a blob of its own.
        await using var writer = blobs.Create();
        long size = 0;
        foreach (var part in parts)
            size += (await CopyBlobAsync(part.BlobId, 0, part.Size, writer, null, context.RequestAborted)).Size;
        await writer.CommitAsync(context.RequestAborted);

        using var md5s = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        foreach (var part in parts)
            md5s.AppendData(Convert.FromHexString(part.ETag));
        var row = new ObjectRow
        {
            Bucket = bucket, Key = key, Size = size, ETag = Convert.ToHexStringLower(md5s.GetHashAndReset()) + "-" + parts.Count.ToString(CultureInfo.InvariantCulture),
            PartsCount = parts.Count, BlobId = writer.BlobId, LastModified = clock.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        row.CopyHeadersFrom(upload);
        if (upload.ChecksumAlgorithm is { } algorithm && parts.All(p => p.ChecksumValue is not null))
        {
            // S3's composite checksum: the checksum of the parts' checksums, with the part count.
            var composite = Checksums.Create(algorithm);
            foreach (var part in parts)
                composite.Append(Convert.FromBase64String(part.ChecksumValue!));
            row.ChecksumAlgorithm = algorithm;
            row.ChecksumValue = Convert.ToBase64String(composite.Final()) + "-" + parts.Count.ToString(CultureInfo.InvariantCulture);
            row.ChecksumType = "COMPOSITE";
        }
        (List<string> Freed, long Delta) done;
        try
        {
            done = await Multipart.CompleteAsync(scopeId, uploadId, row, condition, CancellationToken.None);
        }
        catch
        {
            DeleteBlobQuietly(row.BlobId);
            throw;
        }
        foreach (var blob in done.Freed)
            DeleteBlobQuietly(blob);
        await ReportStoredAsync(scopeId, done.Delta);

        var xml = new S3Xml("CompleteMultipartUploadResult")
            .Element("Location", $"{options.Value.EndpointForClients}/{bucket}/{Uri.EscapeDataString(key).Replace("%2F", "/", StringComparison.Ordinal)}")
            .Element("Bucket", bucket).Element("Key", key).Element("ETag", row.QuotedETag);
        if (row.ChecksumAlgorithm is not null)
            xml.Element("Checksum" + row.ChecksumAlgorithm, row.ChecksumValue).Element("ChecksumType", "COMPOSITE");
        await S3Xml.WriteAsync(context, 200, xml);
    }

    private async Task AbortMultipartUploadAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        var uploadId = context.Request.Query["uploadId"].ToString();
        await Multipart.FindAsync(scopeId, bucket, key, uploadId, context.RequestAborted);
        await Multipart.AbortAsync(uploadId, CancellationToken.None);
        context.Response.StatusCode = 204;
    }

    private async Task ListPartsAsync(HttpContext context, string scopeId, string bucket, string key)
    {
        var uploadId = context.Request.Query["uploadId"].ToString();
        var upload = await Multipart.FindAsync(scopeId, bucket, key, uploadId, context.RequestAborted);
        var query = context.Request.Query;
        var maxParts = 1000;
        if (query.TryGetValue("max-parts", out var max) && (!int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out maxParts) || maxParts < 0))
            throw S3Errors.InvalidArgument("Provided max-parts not an integer or within integer range", "max-parts", max);
        maxParts = Math.Min(maxParts, 1000);
        var marker = 0;
        if (query.TryGetValue("part-number-marker", out var m) && m.ToString().Length > 0 && !int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out marker))
            throw S3Errors.InvalidArgument("Provided part-number-marker not an integer", "part-number-marker", m);
        var parts = await Multipart.PartsAsync(uploadId, marker, maxParts + 1, context.RequestAborted);
        var truncated = parts.Count > maxParts;
        if (truncated)
            parts.RemoveAt(parts.Count - 1);
        var xml = new S3Xml("ListPartsResult").Element("Bucket", bucket).Element("Key", key).Element("UploadId", uploadId);
        Owner(xml.Open("Initiator").Element("ID", OwnerId(scopeId)).Element("DisplayName", scopeId).Close(), scopeId);
        xml.Element("StorageClass", "STANDARD").Element("PartNumberMarker", marker)
           .Element("NextPartNumberMarker", parts.Count > 0 ? parts[^1].PartNumber : marker).Element("MaxParts", maxParts).Element("IsTruncated", truncated);
        if (upload.ChecksumAlgorithm is not null)
            xml.Element("ChecksumAlgorithm", upload.ChecksumAlgorithm).Element("ChecksumType", "COMPOSITE");
        foreach (var part in parts)
        {
            xml.Open("Part").Element("PartNumber", part.PartNumber).Element("LastModified", S3Xml.Timestamp(part.LastModified))
               .Element("ETag", "\"" + part.ETag + "\"").Element("Size", part.Size);
            if (upload.ChecksumAlgorithm is not null)
                xml.Element("Checksum" + upload.ChecksumAlgorithm, part.ChecksumValue);
            xml.Close();
        }
        await S3Xml.WriteAsync(context, 200, xml);
    }

    private async Task ListMultipartUploadsAsync(HttpContext context, string scopeId, string bucket)
    {
        if (!await objects.BucketOwnedAsync(scopeId, bucket, context.RequestAborted))
            throw S3Errors.NoSuchBucket(bucket);
        var query = context.Request.Query;
        string? Q(string name) => query.TryGetValue(name, out var v) && v.Count > 0 && v[0]!.Length > 0 ? v[0] : null;
        var prefix = Q("prefix") ?? "";
        var maxUploads = 1000;
        if (Q("max-uploads") is { } max && (!int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out maxUploads) || maxUploads < 0))
            throw S3Errors.InvalidArgument("Provided max-uploads not an integer or within integer range", "max-uploads", max);
        maxUploads = Math.Min(maxUploads, 1000);
        var keyMarker = Q("key-marker");
        var uploadMarker = keyMarker is null ? null : Q("upload-id-marker");
        var uploads = await Multipart.ListAsync(bucket, prefix, keyMarker, uploadMarker, maxUploads + 1, context.RequestAborted);
        var truncated = uploads.Count > maxUploads;
        if (truncated)
            uploads.RemoveAt(uploads.Count - 1);
        var xml = new S3Xml("ListMultipartUploadsResult").Element("Bucket", bucket).Element("KeyMarker", keyMarker ?? "").Element("UploadIdMarker", uploadMarker ?? "")
            .Element("NextKeyMarker", uploads.Count > 0 ? uploads[^1].Key : "").Element("NextUploadIdMarker", uploads.Count > 0 ? uploads[^1].UploadId : "")
            .Element("Prefix", prefix).Element("MaxUploads", maxUploads).Element("IsTruncated", truncated);
        foreach (var upload in uploads)
        {
            xml.Open("Upload").Element("Key", upload.Key).Element("UploadId", upload.UploadId);
            xml.Open("Initiator").Element("ID", OwnerId(scopeId)).Element("DisplayName", scopeId).Close();
            Owner(xml, scopeId);
            xml.Element("StorageClass", "STANDARD").Element("Initiated", S3Xml.Timestamp(upload.InitiatedAt));
            if (upload.ChecksumAlgorithm is not null)
                xml.Element("ChecksumAlgorithm", upload.ChecksumAlgorithm);
            xml.Close();
        }
        await S3Xml.WriteAsync(context, 200, xml);
    }
}
