namespace OpenPool.Engine.ObjectStorage;

/// <summary>Object storage's knobs (configuration section <c>ObjectStorage</c>).</summary>
internal sealed class ObjectStorageOptions
{
    public const string DefaultUrl = "http://127.0.0.1:8001";

    /// <summary>Where the S3 endpoint listens: a listener of its own beside the TensorPool API.</summary>
    public string Url { get; set; } = DefaultUrl;

    /// <summary>The URL clients use (behind a proxy or on another host name); <see cref="Url"/> when unset.</summary>
    public string? PublicUrl { get; set; }

    /// <summary>When set, <c>bucket.Domain</c> host names address buckets (virtual-hosted style).</summary>
    public string? Domain { get; set; }

    /// <summary>The region clients sign for and <c>GetBucketLocation</c> reports.</summary>
    public string Region { get; set; } = "us-east-1";

    /// <summary>Where object bytes live; <c>&lt;data-dir&gt;/objects</c> when unset. Replicas share one.</summary>
    public string? Root { get; set; }

    /// <summary>Incomplete multipart uploads older than this are aborted.</summary>
    public double AbortIncompleteUploadsAfterDays { get; set; } = 7;

    /// <summary>Price per GB-month on the month's peak stored size (TensorPool: $0.05).</summary>
    public decimal PricePerGbMonthUsd { get; set; } = 0.05m;

    /// <summary>Price per 1,000 S3 requests (TensorPool: $0.005).</summary>
    public decimal PricePer1000RequestsUsd { get; set; } = 0.005m;

    /// <summary>
    /// The key file that seals S3 secrets in the database; <c>&lt;data-dir&gt;/object-storage.key</c> when
    /// unset. Replicas sharing a PostgreSQL database must share it (copy it, or point all at one file).
    /// </summary>
    public string? CredentialKeyFile { get; set; }

    /// <summary>How often metered requests and stored-byte changes buffered in memory are written.</summary>
    public double MeterFlushSeconds { get; set; } = 1;

    /// <summary>The endpoint clients are told to use.</summary>
    public string EndpointForClients => (string.IsNullOrWhiteSpace(PublicUrl) ? Url : PublicUrl).TrimEnd('/');
}
