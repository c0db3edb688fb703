using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Data.Sqlite;

namespace OpenPool.Engine.Data;

/// <summary>
/// The SQLite writer connection as Dapper sees it: every command it creates runs on a statement
/// kept prepared per SQL text, so the few dozen statements the engine writes with are parsed and
/// planned once per connection instead of on every execution (a profile of the claim path showed
/// preparing and finalizing at about a sixth of the writer's time). Only for a connection used by
/// one caller at a time whose readers are closed before the next command, which the group-commit
/// loop guarantees and Dapper's buffered calls do.
/// </summary>
internal sealed class StatementCachingConnection(SqliteConnection inner) : DbConnection
{
    // Texts Dapper builds per list length (IN @ids) would grow the cache without bound: past this
    // many distinct texts, new ones run unprepared.
    private const int MaxStatements = 256;
    private readonly Dictionary<string, SqliteCommand> _statements = new(StringComparer.Ordinal);

    public SqliteConnection Inner => inner;

    internal SqliteCommand CommandFor(string sql, out bool cached)
    {
        if (_statements.TryGetValue(sql, out var command))
        {
            cached = true;
            return command;
        }
        command = inner.CreateCommand();
        command.CommandText = sql;
        cached = _statements.Count < MaxStatements;
        if (cached)
            _statements[sql] = command;
        return command;
    }

    [AllowNull]
    public override string ConnectionString { get => inner.ConnectionString; set => inner.ConnectionString = value; }
    public override string Database => inner.Database;
    public override string DataSource => inner.DataSource;
    public override string ServerVersion => inner.ServerVersion;
    public override ConnectionState State => inner.State;
    public override void ChangeDatabase(string databaseName) => inner.ChangeDatabase(databaseName);
    public override void Open() => inner.Open();
    public override void Close() => inner.Close();
    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) => inner.BeginTransaction(isolationLevel);
    protected override DbCommand CreateDbCommand() => new CachedCommand(this);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var command in _statements.Values)
                command.Dispose();
            _statements.Clear();
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Collects what Dapper sets, then runs it on the connection's prepared statement for the text.</summary>
    private sealed class CachedCommand(StatementCachingConnection owner) : DbCommand
    {
        // A stand-alone SqliteCommand only lends its parameter collection and parameter factory.
        private readonly SqliteCommand _shape = new();
        private SqliteCommand? _uncached;

        [AllowNull]
        public override string CommandText { get; set; } = "";
        public override int CommandTimeout { get; set; } = 30;
        public override CommandType CommandType { get; set; } = CommandType.Text;
        public override bool DesignTimeVisible { get; set; }
        public override UpdateRowSource UpdatedRowSource { get; set; }
        protected override DbConnection? DbConnection { get => owner; set { } }
        protected override DbParameterCollection DbParameterCollection => _shape.Parameters;
        protected override DbTransaction? DbTransaction { get; set; }

        public override void Cancel() { }
        public override void Prepare() { }
        protected override DbParameter CreateDbParameter() => _shape.CreateParameter();

        private SqliteCommand Bound(out bool cached)
        {
            var command = owner.CommandFor(CommandText, out cached);
            command.Transaction = (SqliteTransaction?)DbTransaction;
            command.CommandTimeout = CommandTimeout;
            command.Parameters.Clear();
            foreach (SqliteParameter parameter in _shape.Parameters)
                command.Parameters.Add(parameter);
            _shape.Parameters.Clear(); // a parameter belongs to one collection at a time
            return command;
        }

        public override int ExecuteNonQuery()
        {
            var command = Bound(out var cached);
            try { return command.ExecuteNonQuery(); }
            finally { Release(command, cached); }
        }

        public override object? ExecuteScalar()
        {
            var command = Bound(out var cached);
            try { return command.ExecuteScalar(); }
            finally { Release(command, cached); }
        }

        // The reader is closed by its caller before the next command (Dapper's buffered reads do),
        // which resets the prepared statement for its next use.
        protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
        {
            var command = Bound(out var cached);
            if (!cached)
                _uncached = command; // disposed with this command, after its reader
            return command.ExecuteReader(behavior & ~CommandBehavior.CloseConnection);
        }

        private static void Release(SqliteCommand command, bool cached)
        {
            if (!cached)
                command.Dispose();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _uncached?.Dispose();
                _shape.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
