using System.Data.Common;

namespace OpenPool.Engine.Data;

internal static class Sql
{
    /// <summary>
    /// "column is one of the list parameter": Dapper expands <c>IN @list</c> for SQLite, while
    /// Npgsql sends the list as one array, which PostgreSQL compares with <c>= ANY(@list)</c>.
    /// </summary>
    public static string In(DbConnection connection, string column, string parameter) =>
        In(connection is Npgsql.NpgsqlConnection, column, parameter);

    public static string In(SqlBatch write, string column, string parameter) => In(write.IsPostgres, column, parameter);

    private static string In(bool postgres, string column, string parameter) =>
        postgres ? $"{column} = ANY({parameter})" : $"{column} IN {parameter}";
}
