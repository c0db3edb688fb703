namespace OpenPool.Engine.Hosting;

/// <summary>Where the engine keeps its state; from <c>--data-dir</c> and <c>--database</c>.</summary>
internal sealed class EngineOptions
{
    public const string DefaultUrl = "http://127.0.0.1:8000";

    public required string DataDir { get; init; }

    /// <summary>The SQLite file, unless <see cref="PostgresConnectionString"/> is set.</summary>
    public string? DatabasePath { get; init; }

    /// <summary>Npgsql connection string when the engine runs on PostgreSQL (scale-out).</summary>
    public string? PostgresConnectionString { get; init; }

    public string AdminKeyPath => Path.Combine(DataDir, "admin.key");

    public string DatabaseDescription => PostgresConnectionString is not null
        ? "PostgreSQL " + RedactPassword(PostgresConnectionString)
        : $"SQLite {DatabasePath}";

    public static EngineOptions From(IConfiguration configuration)
    {
        var dataDir = Path.GetFullPath(First(configuration, "data-dir", "DataDir") ?? ".openpool");
        var database = First(configuration, "database", "Database");
        if (database is not null && Data.Database.LooksLikePostgres(database))
        {
            string normalized;
            try
            {
                normalized = Data.Database.NormalizePostgres(database);
                _ = new Npgsql.NpgsqlConnectionStringBuilder(normalized);
            }
            catch (Exception ex) when (ex is ArgumentException or UriFormatException or FormatException)
            {
                throw new EngineStartupException($"--database is not a valid PostgreSQL connection string or URL: {ex.Message}");
            }
            return new EngineOptions { DataDir = dataDir, PostgresConnectionString = normalized };
        }
        return new EngineOptions
        {
            DataDir = dataDir,
            DatabasePath = Path.GetFullPath(database ?? Path.Combine(dataDir, "openpool.db")),
        };
    }

    private static string RedactPassword(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!string.IsNullOrEmpty(builder.Password))
            builder.Password = "***";
        return builder.ConnectionString;
    }

    private static string? First(IConfiguration configuration, params string[] keys) =>
        keys.Select(k => configuration[k]).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
}

/// <summary>The request worker's knobs (configuration section <c>Requests</c>).</summary>
internal sealed class RequestOptions
{
    /// <summary>How long a claim is held without a heartbeat; a dead worker's work is retaken after this.</summary>
    public double LeaseSeconds { get; set; } = 10;
    /// <summary>Transient failures tolerated before a request ends FAILED.</summary>
    public int MaxAttempts { get; set; } = 8;
    public double BackoffBaseSeconds { get; set; } = 1;
    public double BackoffMaxSeconds { get; set; } = 30;
    /// <summary>Requests carried out at once by one engine process.</summary>
    public int Concurrency { get; set; } = 256;
    /// <summary>Finished requests stay readable this long.</summary>
    public double RetentionDays { get; set; } = 30;
    public double SweepIntervalMinutes { get; set; } = 60;
    /// <summary>
    /// How long a call holding an Idempotency-Key blocks retries with it (409) before it counts as
    /// abandoned (its engine died); a retry then gets the answer rebuilt from what the call committed.
    /// </summary>
    public double IdempotencyInFlightSeconds { get; set; } = 60;
    /// <summary>An idle worker re-checks the table this often even without a wake-up.</summary>
    public double SafetySweepSeconds { get; set; } = 5;
}

/// <summary>The simulated cloud's behaviour (configuration section <c>Simulated</c>).</summary>
internal sealed class SimulatedOptions
{
    public double ProvisionSeconds { get; set; } = 3;
    public double ReleaseSeconds { get; set; } = 1;
    /// <summary>How long creating, growing or deleting a volume takes.</summary>
    public double VolumeSeconds { get; set; } = 1;
    /// <summary>How long a cluster's nodes take to restart (attaching or detaching a volume).</summary>
    public double RestartSeconds { get; set; } = 2;
    public double TransientFailureRate { get; set; }
    public double PermanentFailureRate { get; set; }
    /// <summary>Makes fault injection reproducible; random per process when unset.</summary>
    public int? Seed { get; set; }
    /// <summary>Nodes available per instance type; a type not listed is unlimited.</summary>
    public Dictionary<string, int> Capacity { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>A startup problem the operator can fix; printed as one line, without a stack trace.</summary>
internal sealed class EngineStartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Storage volume rules (configuration section <c>Storage</c>).</summary>
internal sealed class StorageOptions
{
    public int MinSizeGb { get; set; } = 10;
    public int MaxSizeGb { get; set; } = 100_000;
}
