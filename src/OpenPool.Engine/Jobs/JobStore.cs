using System.Text.Json;
using Dapper;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;
using OpenPool.Engine.Storage;

namespace OpenPool.Engine.Jobs;

internal sealed class JobStore(Database db, TimeProvider clock)
{
    private const string Columns =
        "j.id, j.user_id AS UserId, j.org_id AS OrgId, j.cluster_id AS ClusterId, j.instance_id AS InstanceId, j.status, j.exit_code AS ExitCode, " +
        "j.tp_config AS TpConfig, j.commands, j.outputs, j.ignore_patterns AS IgnorePatterns, j.teardown_cluster AS TeardownCluster, j.system, " +
        "j.public_message AS PublicMessage, j.upload_received_at AS UploadReceivedAt, j.cancel_requested_at AS CancelRequestedAt, " +
        "j.created_at AS CreatedAt, j.started_at AS StartedAt, j.finished_at AS FinishedAt, u.email AS OwnerEmail";

    private const string From = "FROM jobs j JOIN users u ON u.id = j.user_id";

    /// <summary>Admits a job onto a running cluster the caller may use, within the cluster's job limit.</summary>
    public Task<JobRecord> CreateAsync(Principal caller, string clusterId, string tpConfig, JobConfig config, bool teardown, string system, int maxActive,
        CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var cluster = await ClusterStore.GetVisibleAsync(c, t, caller, clusterId) ?? throw ClusterStore.NotFound(clusterId);
            if (cluster.Status != ClusterStatuses.Running)
                throw ApiError.Conflict("cluster_not_running", $"Cluster {clusterId} is {cluster.Status}; jobs run on RUNNING clusters.");
            var active = await c.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM jobs WHERE cluster_id = @clusterId AND status IN ('pending', 'running', 'canceling')", new { clusterId }, t);
            if (active >= maxActive)
                throw ApiError.Conflict("too_many_jobs", $"Cluster {clusterId} already has {active} active jobs (the limit is {maxActive}). Wait for one to finish or cancel one.");
            var job = new JobRecord
            {
                Id = "j-" + Ids.Random(12),
                UserId = caller.UserId,
                OrgId = caller.OrgId,
                ClusterId = clusterId,
                InstanceId = cluster.Instances.OrderBy(i => i.NodeIndex).First().Id,
                Status = JobStatuses.Pending,
                TpConfig = tpConfig,
                Commands = JsonSerializer.Serialize(config.Commands),
                Outputs = JsonSerializer.Serialize(config.Outputs),
                IgnorePatterns = JsonSerializer.Serialize(config.Ignore),
                TeardownCluster = teardown,
                System = system,
                CreatedAt = clock.Now(),
                OwnerEmail = caller.Email,
            };
            await c.ExecuteAsync(
                """
                INSERT INTO jobs (id, user_id, org_id, cluster_id, instance_id, status, tp_config, commands, outputs, ignore_patterns,
                                  teardown_cluster, system, created_at)
                VALUES (@Id, @UserId, @OrgId, @ClusterId, @InstanceId, @Status, @TpConfig, @Commands, @Outputs, @IgnorePatterns,
                        @TeardownCluster, @System, @CreatedAt)
                """, job, t);
            return job;
        }, ct);

    public Task<JobRecord?> GetAsync(string jobId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<JobRecord?>($"SELECT {Columns} {From} WHERE j.id = @jobId", new { jobId }), ct);

    /// <summary>The job, if the caller may see it and it has not been deleted.</summary>
    public async Task<JobRecord?> GetVisibleAsync(Principal caller, string jobId, CancellationToken ct = default) =>
        await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<JobRecord?>(
            $"SELECT {Columns} {From} WHERE j.id = @jobId AND j.deleted_at IS NULL AND (j.user_id = @UserId OR (j.org_id IS NOT NULL AND j.org_id = @OrgId))",
            new { jobId, caller.UserId, caller.OrgId }), ct);

    public Task<IReadOnlyList<JobRecord>> ListAsync(Principal caller, bool includeOrg, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<JobRecord>>(async c =>
        {
            if (includeOrg && caller.OrgId is null)
                return [];
            var rows = await c.QueryAsync<JobRecord>(
                $"SELECT {Columns} {From} WHERE j.deleted_at IS NULL AND {(includeOrg ? "j.org_id = @OrgId" : "j.user_id = @UserId")} ORDER BY j.created_at DESC LIMIT 500",
                new { caller.UserId, caller.OrgId });
            return rows.AsList();
        }, ct);

    /// <summary>
    /// Jobs the monitor watches: running or being canceled, or not yet started; each with its
    /// cluster's status (<see cref="JobRecord.ClusterStatus"/>), so one query tells which clusters went away.
    /// </summary>
    public Task<IReadOnlyList<JobRecord>> ActiveAsync(CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<JobRecord>>(async c =>
            (await c.QueryAsync<JobRecord>(
                $"SELECT {Columns}, cl.status AS ClusterStatus {From} LEFT JOIN clusters cl ON cl.id = j.cluster_id " +
                "WHERE j.status IN ('pending', 'running', 'canceling')")).AsList(), ct);

    public Task<bool> MarkUploadedAsync(string jobId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) => await c.ExecuteAsync(
            "UPDATE jobs SET upload_received_at = @now WHERE id = @jobId AND status = 'pending' AND upload_received_at IS NULL",
            new { jobId, now = clock.Now() }, t) == 1, ct);

    public Task<bool> MarkRunningAsync(string jobId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) => await c.ExecuteAsync(
            "UPDATE jobs SET status = 'running', started_at = @now WHERE id = @jobId AND status = 'pending'",
            new { jobId, now = clock.Now() }, t) == 1, ct);

    /// <summary>Moves an unfinished job to a terminal status; returns false if it had already ended.</summary>
    public Task<bool> FinishAsync(string jobId, string status, int? exitCode, string? message, CancellationToken ct) =>
        db.WriteAsync(async (c, t) => await c.ExecuteAsync(
            """
            UPDATE jobs SET status = @status, exit_code = @exitCode, public_message = COALESCE(@message, public_message), finished_at = @now
            WHERE id = @jobId AND status IN ('pending', 'running', 'canceling')
            """, new { jobId, status, exitCode, message, now = clock.Now() }, t) == 1, ct);

    /// <summary>Asks to cancel: pending or running jobs become canceling. Returns the status after the call.</summary>
    public Task<string> RequestCancelAsync(string jobId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(
                "UPDATE jobs SET status = 'canceling', cancel_requested_at = @now WHERE id = @jobId AND status IN ('pending', 'running')",
                new { jobId, now = clock.Now() }, t);
            return await c.ExecuteScalarAsync<string>("SELECT status FROM jobs WHERE id = @jobId", new { jobId }, t) ?? JobStatuses.Failed;
        }, ct);

    public Task DeleteAsync(string jobId, CancellationToken ct) =>
        db.WriteAsync((c, t) => c.ExecuteAsync("UPDATE jobs SET deleted_at = @now WHERE id = @jobId", new { jobId, now = clock.Now() }, t), ct);

    /// <summary>Volumes attached to the cluster, which the job sees at their mount paths.</summary>
    public Task<IReadOnlyList<string>> AttachedVolumesAsync(string clusterId, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<string>>(async c => (await c.QueryAsync<string>(
            "SELECT volume_id FROM volume_attachments WHERE cluster_id = @clusterId AND status = 'attached'", new { clusterId })).AsList(), ct);

    public static string MountPathOf(string volumeId) => VolumeRecord.MountPathOf(volumeId);

    public static ApiError NotFound(string jobId) => ApiError.NotFound("job_not_found", $"Job {jobId} not found.");
}
