using Dapper;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Providers.Simulated;

internal static class SimulatedApi
{
    public static void MapSimulated(this WebApplication app)
    {
        app.MapGet("/admin/simulated/effects", async (HttpContext context, Database db) =>
        {
            var objectId = Query.String(context.Request, "object_id");
            var rows = await db.ReadAsync(c => c.QueryAsync<EffectRow>(
                "SELECT kind AS Kind, object_id AS ObjectId, request_id AS RequestId, at AS At FROM sim_effects" +
                (objectId is null ? "" : " WHERE object_id = @objectId") + " ORDER BY seq",
                new { objectId }), context.RequestAborted);
            return Results.Json(new SimulatedEffectsResponse
            {
                Effects = rows.Select(r => new SimulatedEffect { Kind = r.Kind, ObjectId = r.ObjectId, RequestId = r.RequestId, At = Time.Iso(r.At) }).ToList(),
            }, ApiJson.Options);
        }).RequireOperator().WithTags("admin")
          .WithSummary("Side effects the simulated cloud carried out (operator only)")
          .Produces<SimulatedEffectsResponse>();
    }

    private sealed class EffectRow
    {
        public string Kind { get; set; } = "";
        public string ObjectId { get; set; } = "";
        public string RequestId { get; set; } = "";
        public long At { get; set; }
    }
}
