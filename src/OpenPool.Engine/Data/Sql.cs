using System.Data.Common;

namespace OpenPool.Engine.Data;

internal static class Sql
{
    /// <summary>
    /// "column is one of the list parameter": Dapper expands <c>IN @list</c> for SQLite, while
    /// Npgsql sends the list as one array, which PostgreSQL compares with <c>= ANY(@list)</c>.
    /// </summary>
    public static string In(DbConnection connection, string column, string parameter) =>
        connection is Npgsql.NpgsqlConnection ? $"{column} = ANY({parameter})" : $"{column} IN {parameter}";
}
