using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;
using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace OpenPool.Engine.Data;

/// <summary>
/// A write's statements, held back and sent together when it flushes: on PostgreSQL consecutive
/// statements go in one round trip (an <see cref="NpgsqlBatch"/>); on SQLite they run one after
/// another on the same connection, where a round trip costs nothing. A step that must read before it
/// writes (<see cref="Then"/>) runs in its place in the order, after what came before it was sent.
/// Why: a worker's step result was the request's fenced update plus a statement or two for each
/// resource it changed, each one a round trip of its own inside a group-commit batch.
/// </summary>
internal sealed class SqlBatch(DbConnection connection, DbTransaction transaction)
{
    private readonly List<Item> _items = [];

    /// <summary>For the few statements whose text differs between the two databases.</summary>
    public bool IsPostgres => connection is NpgsqlConnection;

    /// <summary>Adds a statement.</summary>
    public void Add(string sql, object? args = null) => _items.Add(new Item(sql, args, Guard: false, Step: null));

    /// <summary>
    /// Adds a statement that must change at least one row: when it changes none, the flush throws
    /// <see cref="GuardFailedException"/>, and the write it belongs to is rolled back whole.
    /// </summary>
    public void AddGuard(string sql, object? args = null) => _items.Add(new Item(sql, args, Guard: true, Step: null));

    /// <summary>Adds work that needs the connection itself (to read, say); it runs once what was added before it has been sent.</summary>
    public void Then(Func<DbConnection, DbTransaction, Task> step) => _items.Add(new Item("", null, Guard: false, step));

    /// <summary>Sends everything added, in order.</summary>
    public async Task FlushAsync()
    {
        var items = _items.ToArray();
        _items.Clear();
        var from = 0;
        for (var i = 0; i <= items.Length; i++)
        {
            if (i < items.Length && items[i].Step is null)
                continue;
            if (i > from)
                await SendAsync(new ArraySegment<Item>(items, from, i - from));
            if (i < items.Length)
                await items[i].Step!(connection, transaction);
            from = i + 1;
        }
    }

    private async Task SendAsync(ArraySegment<Item> statements)
    {
        if (connection is not NpgsqlConnection postgres)
        {
            foreach (var statement in statements)
            {
                if (await connection.ExecuteAsync(statement.Sql, statement.Args, transaction) == 0 && statement.Guard)
                    throw new GuardFailedException();
            }
            return;
        }
        await using var batch = new NpgsqlBatch(postgres, (NpgsqlTransaction)transaction);
        foreach (var statement in statements)
        {
            var command = new NpgsqlBatchCommand(statement.Sql);
            if (statement.Args is not null)
                ParametersOf.Add(command, statement.Args);
            batch.BatchCommands.Add(command);
        }
        await batch.ExecuteNonQueryAsync();
        for (var i = 0; i < statements.Count; i++)
        {
            if (statements[i].Guard && batch.BatchCommands[i].RecordsAffected == 0)
                throw new GuardFailedException();
        }
    }

    private sealed record Item(string Sql, object? Args, bool Guard, Func<DbConnection, DbTransaction, Task>? Step);

    /// <summary>
    /// Npgsql parameters from an argument object's public properties, as Dapper would bind them for
    /// a command (Dapper cannot bind a batch's commands). Only properties the SQL names are sent.
    /// </summary>
    private static class ParametersOf
    {
        private static readonly ConcurrentDictionary<(Type, string), PropertyInfo[]> Used = new();

        public static void Add(NpgsqlBatchCommand command, object args)
        {
            var properties = Used.GetOrAdd((args.GetType(), command.CommandText), static key =>
                key.Item1.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                    .Where(p => p.CanRead && p.GetIndexParameters().Length == 0 && Names(key.Item2, p.Name))
                    .ToArray());
            foreach (var property in properties)
            {
                var value = property.GetValue(args);
                command.Parameters.Add(value is null
                    ? new NpgsqlParameter(property.Name, TypeOfNull(property.PropertyType)) { Value = DBNull.Value }
                    : new NpgsqlParameter(property.Name, value));
            }
        }

        /// <summary>Whether <paramref name="sql"/> has the placeholder <c>@name</c> (not merely a longer name starting with it).</summary>
        private static bool Names(string sql, string name)
        {
            var placeholder = "@" + name;
            for (var at = sql.IndexOf(placeholder, StringComparison.OrdinalIgnoreCase); at >= 0;
                 at = sql.IndexOf(placeholder, at + 1, StringComparison.OrdinalIgnoreCase))
            {
                var end = at + placeholder.Length;
                if (end == sql.Length || !(char.IsLetterOrDigit(sql[end]) || sql[end] == '_'))
                    return true;
            }
            return false;
        }

        /// <summary>A typed null, so PostgreSQL need not infer a type it may get wrong (a null in a CASE, say).</summary>
        private static NpgsqlDbType TypeOfNull(Type type) =>
            (Nullable.GetUnderlyingType(type) ?? type) switch
            {
                var t when t == typeof(long) => NpgsqlDbType.Bigint,
                var t when t == typeof(int) => NpgsqlDbType.Integer,
                var t when t == typeof(bool) => NpgsqlDbType.Boolean,
                var t when t == typeof(double) => NpgsqlDbType.Double,
                _ => NpgsqlDbType.Text,
            };
    }
}

/// <summary>A guarded statement (<see cref="SqlBatch.AddGuard"/>) changed no row.</summary>
internal sealed class GuardFailedException() : Exception("A guarded statement changed no row; the write was rolled back.");
