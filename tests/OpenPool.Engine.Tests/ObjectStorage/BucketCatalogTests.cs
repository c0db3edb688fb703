using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

public sealed class BucketCatalogTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Names_are_global_and_each_scope_sees_only_its_own(Backend backend)
    {
        using var scratch = new ScratchDatabase(backend);
        var catalog = new BucketCatalog(scratch.Db, TimeProvider.System, Options.Create(new ObjectStorageOptions()));

        Assert.Equal(BucketCreateOutcome.Created, await catalog.CreateAsync("o-a", "shared-name", default));
        Assert.Equal(BucketCreateOutcome.AlreadyOwnedByYou, await catalog.CreateAsync("o-a", "shared-name", default));
        Assert.Equal(BucketCreateOutcome.AlreadyExists, await catalog.CreateAsync("o-b", "shared-name", default));
        Assert.Equal(BucketCreateOutcome.Created, await catalog.CreateAsync("o-b", "b-bucket", default));

        Assert.Equal(["shared-name"], (await catalog.ListAsync("o-a", default)).Select(b => b.Name));
        Assert.Equal(["b-bucket"], (await catalog.ListAsync("o-b", default)).Select(b => b.Name));

        // Another scope's bucket is not found, and stays.
        Assert.Equal(BucketDeleteOutcome.NotFound, await catalog.DeleteAsync("o-b", "shared-name", default));
        await scratch.Db.WriteAsync((c, t) => c.ExecuteAsync(
            "INSERT INTO s3_objects (bucket, key, size, etag, blob_id, last_modified) VALUES ('shared-name', 'k', 1, 'e', 'b1', 0)", transaction: t));
        Assert.Equal(BucketDeleteOutcome.NotEmpty, await catalog.DeleteAsync("o-a", "shared-name", default));
        await scratch.Db.WriteAsync((c, t) => c.ExecuteAsync("DELETE FROM s3_objects", transaction: t));
        Assert.Equal(BucketDeleteOutcome.Deleted, await catalog.DeleteAsync("o-a", "shared-name", default));
        Assert.Empty(await catalog.ListAsync("o-a", default));
        await Assert.ThrowsAsync<ArgumentException>(() => catalog.CreateAsync("o-a", "Bad_Name", default));
    }

    [Theory]
    [InlineData("abc", true)]
    [InlineData("my.bucket-1", true)]
    [InlineData("ab", false)]
    [InlineData("Upper", false)]
    [InlineData("-start", false)]
    [InlineData("end-", false)]
    [InlineData("a..b", false)]
    [InlineData("a.-b", false)]
    [InlineData("192.168.5.4", false)]
    [InlineData("xn--bucket", false)]
    [InlineData("bucket-s3alias", false)]
    [InlineData("bucket--ol-s3", false)]
    [InlineData("under_score", false)]
    public void Bucket_naming_rules(string name, bool valid)
    {
        Assert.Equal(valid, BucketNames.Problem(name) is null);
        Assert.False(BucketNames.Problem(new string('a', 64)) is null);
        Assert.True(BucketNames.Problem(new string('a', 63)) is null);
    }

    [Fact]
    public async Task Keys_list_in_utf8_byte_order_on_postgres()
    {
        // UTF-8 byte order puts "Z" (0x5A) before "a" (0x61) and "é" (0xC3 0xA9) after "z"; a
        // linguistic collation would not.
        using var scratch = new ScratchDatabase(Backend.Postgres);
        await scratch.Db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO s3_buckets (name, scope_id, region, created_at) VALUES ('b', 's', 'r', 0)", transaction: t);
            foreach (var key in (string[])["é", "a", "Z", "z", "a/b"])
                await c.ExecuteAsync("INSERT INTO s3_objects (bucket, key, size, etag, blob_id, last_modified) VALUES ('b', @key, 1, 'e', 'x', 0)", new { key }, t);
        });
        var keys = await scratch.Db.ReadAsync(c => c.QueryAsync<string>("SELECT key FROM s3_objects WHERE bucket = 'b' ORDER BY key"));
        Assert.Equal(["Z", "a", "a/b", "z", "é"], keys);
    }
}
