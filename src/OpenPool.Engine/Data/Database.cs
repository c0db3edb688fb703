using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace OpenPool.Engine.Data;

internal enum SqlDialect
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The one way code reaches the database: SQLite (embedded, one engine process) or PostgreSQL (any
/// number of replicas). Stores write portable SQL; the few places the two differ ask this class
/// (<see cref="SkipLocked"/>, <see cref="LockAsync"/>).
/// </summary>
internal sealed class Database : IDisposable
{
    private readonly string? _sqliteConnectionString;
    private readonly NpgsqlDataSource? _postgres;

    private Database(SqlDialect dialect, string? sqlitePath, string? sqliteConnectionString, NpgsqlDataSource? postgres)
    {
        Dialect = dialect;
        SqlitePath = sqlitePath;
        _sqliteConnectionString = sqliteConnectionString;
        _postgres = postgres;
        if (dialect == SqlDialect.Sqlite)
            _sqliteWriter = new SqliteGroupCommit(OpenSqliteWriterAsync);
    }

    public SqlDialect Dialect { get; }

    /// <summary>The SQLite file, when the database is SQLite.</summary>
    public string? SqlitePath { get; }

    public bool IsPostgres => Dialect == SqlDialect.Postgres;

    /// <summary>Appended to a claim's row selection so concurrent replicas take different rows.</summary>
    public string SkipLocked => IsPostgres ? " FOR UPDATE SKIP LOCKED" : "";

    public static Database Sqlite(string path)
    {
        var full = Path.GetFullPath(path);
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        return new Database(SqlDialect.Sqlite, full, connectionString, null);
    }

    public static Database Postgres(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        // The engine runs the same few dozen statements over and over: let Npgsql prepare them on
        // the server after their second use (parse and plan once), unless the operator chose otherwise.
        if (!OperatorSets(connectionString, "Max Auto Prepare", "MaxAutoPrepare"))
        {
            builder.ConnectionStringBuilder.MaxAutoPrepare = 128;
            builder.ConnectionStringBuilder.AutoPrepareMinUsages = 2;
        }
        // Pooled connections carry no session state the engine sets (its locks are transaction-scoped
        // and LISTEN has a connection of its own), so skip the reset a pooled connection otherwise
        // runs on the server every time it is handed out again, unless the operator asked for it.
        if (!OperatorSets(connectionString, "No Reset On Close", "NoResetOnClose"))
            builder.ConnectionStringBuilder.NoResetOnClose = true;
        var database = new Database(SqlDialect.Postgres, null, null, builder.Build());
        // LISTEN and the committers stay on their connections for the engine's life; those must never
        // be handed to the pool, where (with no reset on close) another caller would inherit their
        // subscription or session settings.
        database._unpooledConnectionString = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Pooling = false }.ConnectionString;
        database._postgresWriter = new PostgresGroupCommit(database.OpenPostgresCommitterAsync, PostgresCommitters);
        return database;
    }

    /// <summary>Whether the operator's connection string sets an option, under either of its spellings.</summary>
    private static bool OperatorSets(string connectionString, params string[] keywords) =>
        keywords.Any(keyword => connectionString.Contains(keyword, StringComparison.OrdinalIgnoreCase));

    /// <summary>A <c>--database</c> value: a PostgreSQL connection string or URL, or else a SQLite file path.</summary>
    public static bool LooksLikePostgres(string value) =>
        value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) ||
        value.Contains("Host=", StringComparison.OrdinalIgnoreCase);

    /// <summary>Turns <c>postgres://user:pass@host:port/db?sslmode=…</c> into Npgsql's key=value form.</summary>
    public static string NormalizePostgres(string value)
    {
        if (!value.Contains("://", StringComparison.Ordinal))
            return value;
        var uri = new Uri(value);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
                builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            if (kv[0].Equals("sslmode", StringComparison.OrdinalIgnoreCase) && kv.Length == 2 && Enum.TryParse<SslMode>(kv[1], true, out var mode))
                builder.SslMode = mode;
        }
        return builder.ConnectionString;
    }

    public async Task<DbConnection> OpenAsync(CancellationToken ct = default)
    {
        if (_postgres is not null)
            return await _postgres.OpenConnectionAsync(ct);
        // Readers need no per-connection settings under WAL (they never wait for the writer).
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(ct);
        return connection;
    }

    // SQLite has one writer per file. Every write queues for the one long-lived writer connection,
    // which commits whatever queued up meanwhile together (see SqliteGroupCommit).
    private readonly SqliteGroupCommit? _sqliteWriter;

    /// <summary>A SQLite connection of its own, never returned to the pool (the writer's, the checkpointer's, a prepared reader's).</summary>
    private async Task<SqliteConnection> OpenUnpooledSqliteAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_sqliteConnectionString + ";Pooling=False");
        await connection.OpenAsync(ct);
        return connection;
    }

    private async Task<SqliteConnection> OpenSqliteWriterAsync(CancellationToken ct)
    {
        var connection = await OpenUnpooledSqliteAsync(ct);
        using var pragma = connection.CreateCommand();
        // journal_mode=WAL is persistent and set once by the migrator; these are per connection. The
        // group commit checkpoints on a connection of its own (wal_autocheckpoint=0 here).
        pragma.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000; PRAGMA wal_autocheckpoint=0;";
        await pragma.ExecuteNonQueryAsync(ct);
        return connection;
    }

    /// <summary>A connection outside the pool's reach, for LISTEN (PostgreSQL only).</summary>
    public NpgsqlConnection? CreateListenerConnection() =>
        _unpooledConnectionString is null ? null : new NpgsqlConnection(_unpooledConnectionString);

    private string? _unpooledConnectionString;

    // PostgreSQL writes queue for a few committer loops, each committing what queued up meanwhile
    // together (see PostgresGroupCommit). Four keeps a batch filling while others commit, without
    // more open transactions than two cores can serve: bench/run.sh --quick --only claims-postgres
    // measured 2 committers at 401 claims/s, 3 at 461, 4 at 447-460, 8 at 391 and 16 at 371.
    private const int PostgresCommitters = 4;
    private PostgresGroupCommit? _postgresWriter;

    private async Task<NpgsqlConnection> OpenPostgresCommitterAsync(int index, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(_unpooledConnectionString);
        await connection.OpenAsync(ct);
        // Each committer keeps its account meter changes to a row of its own (migration 0007): a
        // batch holds its locks until it commits, and two batches taking the same rows in different
        // orders would deadlock.
        await connection.ExecuteAsync($"SET openpool.meter_shard = '{index % MeterShards}'");
        return connection;
    }

    /// <summary>Rows each account's meter sums are spread over on PostgreSQL (migration 0006).</summary>
    private const int MeterShards = 16;

    // SQLite readers kept open with their hot statements prepared: a poll then costs one bind and one
    // step instead of a pooled open, a parse and a plan (PostgreSQL gets the same from auto-prepare).
    private readonly ConcurrentBag<PreparedReader> _readers = [];

    private sealed class PreparedReader(SqliteConnection connection) : IDisposable
    {
        private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

        public SqliteCommand Command(string sql)
        {
            if (!_commands.TryGetValue(sql, out var command))
            {
                command = connection.CreateCommand();
                command.CommandText = sql;
                command.Parameters.Add("@key", SqliteType.Text);
                command.Prepare();
                _commands[sql] = command;
            }
            return command;
        }

        public void Dispose()
        {
            foreach (var command in _commands.Values)
                command.Dispose();
            connection.Dispose();
        }
    }

    /// <summary>
    /// The one row <paramref name="sql"/> selects by its single parameter <c>@key</c>, or null: the
    /// shape of the engine's hottest reads (a request by id).
    /// </summary>
    public async Task<T?> ReadRowAsync<T>(string sql, string key, CancellationToken ct = default) where T : class
    {
        if (_postgres is not null)
            return await ReadAsync(c => c.QuerySingleOrDefaultAsync<T>(sql, new { key }), ct);
        return await OnPreparedReaderAsync(sql, key, rows => rows.Read() ? rows.GetRowParser<T>()(rows) : null, ct);
    }

    /// <summary>
    /// The one row <paramref name="rowSql"/> selects by <c>@key</c> (or null), and every row
    /// <paramref name="rowsSql"/> selects by the same key: a cluster and its instances. On PostgreSQL
    /// both go in one command, so one round trip; on SQLite each runs on a prepared reader.
    /// </summary>
    public async Task<(T? Row, List<TRows> Rows)> ReadRowAndRowsAsync<T, TRows>(string rowSql, string rowsSql, string key, CancellationToken ct = default)
        where T : class
    {
        if (_postgres is not null)
        {
            return await ReadAsync(async c =>
            {
                using var results = await c.QueryMultipleAsync(rowSql + ";\n" + rowsSql, new { key });
                var row = await results.ReadSingleOrDefaultAsync<T>();
                return (row, (await results.ReadAsync<TRows>()).AsList());
            }, ct);
        }
        var first = await ReadRowAsync<T>(rowSql, key, ct);
        var rows = await OnPreparedReaderAsync(rowsSql, key, reader =>
        {
            var list = new List<TRows>();
            var parse = reader.GetRowParser<TRows>();
            while (reader.Read())
                list.Add(parse(reader));
            return list;
        }, ct);
        return (first, rows);
    }

    private async Task<TResult> OnPreparedReaderAsync<TResult>(string sql, string key, Func<DbDataReader, TResult> read, CancellationToken ct)
    {
        if (!_readers.TryTake(out var reader))
            reader = new PreparedReader(await OpenUnpooledSqliteAsync(ct));
        try
        {
            var command = reader.Command(sql);
            command.Parameters[0].Value = key;
            TResult result;
            using (var rows = command.ExecuteReader())
                result = read(rows);
            _readers.Add(reader);
            return result;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        return await work(connection);
    }

    /// <summary>
    /// Runs <paramref name="work"/> as one atomic write, committed (with others queued meanwhile)
    /// before its result is returned. The work must be fine to run again from the start: on
    /// PostgreSQL a write that lost a lock cycle to another batch is rolled back and run again.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct = default) =>
        IsPostgres ? _postgresWriter!.WriteAsync(work, ct) : _sqliteWriter!.WriteAsync(work, ct);

    /// <summary>
    /// A write in a transaction of its own, never batched with others: for a statement that locks
    /// many rows at once (the lease heartbeat), which inside a batch would hold them until the whole
    /// batch commits. Same as <see cref="WriteAsync{T}"/> on SQLite, where writes take turns anyway.
    /// </summary>
    public async Task<T> WriteAloneAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        if (!IsPostgres)
            return await _sqliteWriter!.WriteAsync(work, ct);
        await using var connection = await OpenAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);
        var result = await work(connection, transaction);
        await transaction.CommitAsync(ct);
        return result;
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> work, CancellationToken ct = default) =>
        WriteAsync<bool>(async (c, t) => { await work(c, t); return true; }, ct);

    /// <summary>A write made only of statements <paramref name="build"/> adds to a <see cref="SqlBatch"/>, sent when it returns.</summary>
    public Task WriteAsync(Action<SqlBatch> build, CancellationToken ct = default) =>
        WriteAsync(async (c, t) =>
        {
            var write = new SqlBatch(c, t);
            build(write);
            await write.FlushAsync();
        }, ct);

    /// <summary>
    /// Serializes transactions that name the same key until they end (a PostgreSQL advisory lock).
    /// SQLite transactions are serialized already.
    /// </summary>
    public Task LockAsync(DbConnection c, DbTransaction t, string key) =>
        IsPostgres ? c.ExecuteAsync(TakeLock, new { key }, t) : Task.CompletedTask;

    private const string TakeLock = "SELECT pg_advisory_xact_lock(hashtextextended(@key, 0))";

    /// <summary>
    /// <see cref="LockAsync"/>, then the one row <paramref name="sql"/> selects, in one round trip on
    /// PostgreSQL: the two go as one command, and under READ COMMITTED the select takes its snapshot
    /// only once the lock is held, so it sees everything committed by the lock's previous holder.
    /// </summary>
    public async Task<T> LockThenQuerySingleAsync<T>(DbConnection c, DbTransaction t, string key, string sql, object args)
    {
        if (!IsPostgres)
            return await c.QuerySingleAsync<T>(sql, args, t);
        var parameters = new DynamicParameters(args);
        parameters.Add("key", key);
        using var results = await c.QueryMultipleAsync(TakeLock + ";\n" + sql, parameters, t);
        await results.ReadAsync(); // the lock's empty result
        return await results.ReadSingleAsync<T>();
    }

    public static bool IsUniqueViolation(Exception ex) =>
        ex is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 } ||
        ex is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public void Dispose()
    {
        while (_readers.TryTake(out var reader))
            reader.Dispose();
        _sqliteWriter?.Dispose();
        _postgresWriter?.Dispose();
        _postgres?.Dispose();
    }
}
