using System.Data.Common;
using System.Text;
using Dapper;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Requests;

/// <summary>All SQL on the <c>requests</c> table. Every write a worker makes is fenced by its lease token.</summary>
internal sealed class RequestStore(Database db)
{
    private const string Columns =
        "seq, id, type, status, user_id AS UserId, org_id AS OrgId, object_id AS ObjectId, external_message AS ExternalMessage, " +
        "created_at AS CreatedAt, updated_at AS UpdatedAt, finished_at AS FinishedAt, attempts, next_run_at AS NextRunAt, step, payload, " +
        "lease_owner AS LeaseOwner, lease_expires_at AS LeaseExpiresAt, lease_token AS LeaseToken, idempotency_key AS IdempotencyKey";

    /// <summary>
    /// Inserts a request inside the caller's transaction, so the resource row and its request commit
    /// together (persist first). When the object already has unfinished work, the new request says
    /// what it waits for; the worker will not start it before that work ends. An object created in
    /// the same transaction (<paramref name="objectIsNew"/>) has no earlier work, so that lookup is skipped.
    /// </summary>
    public static async Task<RequestRow> EnqueueAsync(
        DbConnection c, DbTransaction t, RequestType type, Principal owner, string? objectId, string firstStep, string payload, long now,
        bool objectIsNew = false)
    {
        string? waitingFor = null;
        if (objectId is not null && !objectIsNew)
        {
            var predecessor = await c.QueryFirstOrDefaultAsync<RequestRow>(
                $"SELECT {Columns} FROM requests WHERE object_id = @objectId AND finished_at IS NULL ORDER BY seq DESC LIMIT 1",
                new { objectId }, t);
            if (predecessor is not null)
                waitingFor = WaitingMessage(predecessor);
        }
        var row = NewRow(type, owner, objectId, firstStep, payload, now, waitingFor);
        var insert = new StringBuilder();
        var args = new DynamicParameters();
        AddInsert(insert, args, row);
        row.Seq = await c.ExecuteScalarAsync<long>(insert.ToString(), args, t);
        return row;
    }

    /// <summary>A request not written yet: for a caller that writes it with its own rows in one command (<see cref="AddInsert"/>).</summary>
    public static RequestRow NewRow(RequestType type, Principal owner, string? objectId, string firstStep, string payload, long now, string? waitingFor = null) =>
        new()
        {
            Id = Ids.Request(),
            Type = type.Name(),
            Status = RequestStatus.Pending.Name(),
            UserId = owner.UserId,
            OrgId = owner.OrgId,
            ObjectId = objectId,
            ExternalMessage = waitingFor ?? "Queued.",
            CreatedAt = now,
            UpdatedAt = now,
            NextRunAt = now,
            Step = firstStep,
            Payload = payload,
        };

    /// <summary>
    /// Appends the statements that write <paramref name="row"/> to a command being built: under an
    /// idempotency key, the key's record of the request, then the row itself. The insert answers
    /// with the row's <c>seq</c>, so nothing that returns rows may follow it. Its parameters are
    /// named <c>@request…</c> and <c>@idempotency…</c>, clear of the caller's own.
    /// </summary>
    public static void AddInsert(StringBuilder sql, DynamicParameters args, RequestRow row)
    {
        if (Http.IdempotencyScope.Current is { } scope && scope.UserId == row.UserId)
        {
            row.IdempotencyKey = scope.Key;
            sql.Append(
                """

                UPDATE idempotency_keys SET committed_requests = COALESCE(committed_requests || ',', '') || @requestId
                WHERE user_id = @idempotencyUser AND idem_key = @idempotencyKey;
                """);
            args.AddDynamicParams(new { idempotencyUser = scope.UserId, idempotencyKey = scope.Key });
        }
        sql.Append(
            """

            INSERT INTO requests (id, type, status, user_id, org_id, object_id, external_message, created_at, updated_at,
                                  attempts, next_run_at, step, payload, lease_token, idempotency_key)
            VALUES (@requestId, @requestType, @requestStatus, @requestUser, @requestOrg, @requestObject, @requestMessage, @requestCreatedAt,
                    @requestUpdatedAt, 0, @requestNextRunAt, @requestStep, @requestPayload, 0, @requestIdempotencyKey)
            RETURNING seq;
            """);
        args.AddDynamicParams(new
        {
            requestId = row.Id, requestType = row.Type, requestStatus = row.Status, requestUser = row.UserId, requestOrg = row.OrgId,
            requestObject = row.ObjectId, requestMessage = row.ExternalMessage, requestCreatedAt = row.CreatedAt,
            requestUpdatedAt = row.UpdatedAt, requestNextRunAt = row.NextRunAt, requestStep = row.Step, requestPayload = row.Payload,
            requestIdempotencyKey = row.IdempotencyKey,
        });
    }

    public static string WaitingMessage(RequestRow predecessor) =>
        $"waiting for {predecessor.Id} ({predecessor.Type}) on {predecessor.ObjectId}";

    public Task<RequestRow?> GetAsync(string id, CancellationToken ct = default) =>
        db.ReadRowAsync<RequestRow>(ById, id, ct);

    private const string ById = $"SELECT {Columns} FROM requests WHERE id = @key";

    /// <summary>The request, if the caller may see it (its own, or its organization's).</summary>
    public async Task<RequestRow?> GetVisibleAsync(Principal caller, string id, CancellationToken ct = default)
    {
        var row = await GetAsync(id, ct);
        return row is not null && CanSee(caller, row) ? row : null;
    }

    public static bool CanSee(Principal caller, RequestRow row) =>
        row.UserId == caller.UserId || (caller.OrgId is not null && row.OrgId == caller.OrgId);

    /// <summary>The earliest unfinished request on the same object that this one waits behind, if any.</summary>
    public Task<RequestRow?> BlockerAsync(RequestRow row, CancellationToken ct = default) =>
        row.ObjectId is null || row.IsFinished
            ? Task.FromResult<RequestRow?>(null)
            : db.ReadAsync(c => c.QueryFirstOrDefaultAsync<RequestRow>(
                $"SELECT {Columns} FROM requests WHERE object_id = @ObjectId AND finished_at IS NULL AND seq < @Seq ORDER BY seq DESC LIMIT 1",
                row), ct);

    public Task<IReadOnlyList<RequestRow>> ListAsync(
        Principal caller, bool includeOrg, string? status, string? type, string? objectId, long? beforeSeq, int limit, CancellationToken ct = default) =>
        db.ReadAsync<IReadOnlyList<RequestRow>>(async c =>
        {
            var sql = $"SELECT {Columns} FROM requests WHERE " +
                      (includeOrg ? "org_id = @OrgId" : "user_id = @UserId") +
                      (status is null ? "" : " AND status = @status") +
                      (type is null ? "" : " AND type = @type") +
                      (objectId is null ? "" : " AND object_id = @objectId") +
                      (beforeSeq is null ? "" : " AND seq < @beforeSeq") +
                      " ORDER BY seq DESC LIMIT @limit";
            var rows = await c.QueryAsync<RequestRow>(sql, new { caller.OrgId, caller.UserId, status, type, objectId, beforeSeq, limit });
            return rows.AsList();
        }, ct);

    /// <summary>
    /// Claims up to <paramref name="limit"/> due requests for <paramref name="owner"/>: pending or
    /// retrying ones whose time has come, and processing ones whose lease lapsed (a dead worker's),
    /// skipping any that wait behind earlier unfinished work on the same object. Each claim bumps
    /// the fencing token, which every later write must present. On PostgreSQL, replicas claiming at
    /// once skip each other's locked rows instead of queueing on them.
    /// </summary>
    public Task<IReadOnlyList<RequestRow>> ClaimAsync(string owner, int limit, long now, long leaseMs, CancellationToken ct = default) =>
        db.WriteAsync<IReadOnlyList<RequestRow>>(async (c, t) =>
        {
            var rows = await c.QueryAsync<RequestRow>(
                $"""
                UPDATE requests
                SET status = 'PROCESSING', lease_owner = @owner, lease_expires_at = @expires,
                    lease_token = lease_token + 1, updated_at = @now
                WHERE seq IN (
                    SELECT r.seq FROM requests r
                    WHERE r.finished_at IS NULL AND r.next_run_at <= @now
                      AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= @now)
                      AND NOT EXISTS (SELECT 1 FROM requests p
                                      WHERE p.object_id = r.object_id AND p.finished_at IS NULL AND p.seq < r.seq)
                    ORDER BY r.next_run_at, r.seq
                    LIMIT @limit{db.SkipLocked})
                RETURNING {Columns}
                """, new { owner, now, expires = now + leaseMs, limit }, t);
            return rows.OrderBy(r => r.Seq).ToList();
        }, ct);

    /// <summary>When the next piece of work for this worker becomes due (null: nothing is waiting).</summary>
    public Task<long?> NextDueAtAsync(string owner, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long?>(
            """
            SELECT MIN(CASE WHEN r.lease_expires_at IS NOT NULL AND r.lease_expires_at > r.next_run_at
                            THEN r.lease_expires_at ELSE r.next_run_at END)
            FROM requests r
            WHERE r.finished_at IS NULL AND (r.lease_owner IS NULL OR r.lease_owner <> @owner)
              AND NOT EXISTS (SELECT 1 FROM requests p
                              WHERE p.object_id = r.object_id AND p.finished_at IS NULL AND p.seq < r.seq)
            """, new { owner }), ct);

    /// <summary>
    /// Extends every lease this worker holds; a worker that stops heartbeating loses them. It skips
    /// rows another transaction is writing at that moment (on PostgreSQL), so it never waits on a
    /// lock and so never closes a lock cycle; those rows are this worker's own results being written
    /// and are extended by the next beat, well before a lease of three beats lapses.
    /// </summary>
    public Task<int> HeartbeatAsync(string owner, long expires, CancellationToken ct = default) =>
        db.WriteAloneAsync((c, t) => c.ExecuteAsync(
            $"""
            UPDATE requests SET lease_expires_at = @expires
            WHERE seq IN (SELECT seq FROM requests WHERE lease_owner = @owner AND finished_at IS NULL{db.SkipLocked})
            """,
            new { owner, expires }, t), ct);

    /// <summary>
    /// The one write path for a worker's results: it applies only while the row still carries the
    /// worker's token, together with the handler's resource updates in the same transaction. When a
    /// newer claim or a supersede took the token, the flush throws <see cref="GuardFailedException"/>,
    /// nothing of the write stays, and the caller must discard its results.
    /// </summary>
    public static void AddFencedUpdate(SqlBatch write, RequestRow row, long token) =>
        write.AddGuard(
            """
            UPDATE requests
            SET status = @Status, step = @Step, external_message = @ExternalMessage, updated_at = @UpdatedAt,
                finished_at = @FinishedAt, attempts = @Attempts, next_run_at = @NextRunAt,
                lease_owner = @LeaseOwner, lease_expires_at = @LeaseExpiresAt
            WHERE id = @Id AND lease_token = @token
            """,
            new
            {
                row.Status, row.Step, row.ExternalMessage, row.UpdatedAt, row.FinishedAt, row.Attempts, row.NextRunAt,
                row.LeaseOwner, row.LeaseExpiresAt, row.Id, token,
            });

    /// <summary>
    /// Ends unfinished requests of <paramref name="type"/> on an object as FAILED and bumps their token,
    /// so a worker still carrying one out finds its writes rejected. Returns the ids it ended.
    /// </summary>
    public static async Task<IReadOnlyList<string>> SupersedeAsync(
        DbConnection c, DbTransaction t, string objectId, RequestType type, string message, long now)
    {
        var ids = await c.QueryAsync<string>(
            """
            UPDATE requests
            SET status = 'FAILED', external_message = @message, finished_at = @now, updated_at = @now,
                lease_owner = NULL, lease_expires_at = NULL, lease_token = lease_token + 1
            WHERE object_id = @objectId AND type = @type AND finished_at IS NULL
            RETURNING id
            """, new { objectId, type = type.Name(), message, now }, t);
        return ids.AsList();
    }

    /// <summary>Deletes finished requests older than the cutoff, in batches so a large backlog never holds the write lock long.</summary>
    public async Task<int> SweepAsync(long finishedBefore, int batchSize = 5000, CancellationToken ct = default)
    {
        var total = 0;
        while (true)
        {
            var deleted = await db.WriteAsync((c, t) => c.ExecuteAsync(
                """
                DELETE FROM requests WHERE seq IN (
                    SELECT seq FROM requests WHERE finished_at IS NOT NULL AND finished_at < @finishedBefore LIMIT @batchSize)
                """, new { finishedBefore, batchSize }, t), ct);
            total += deleted;
            if (deleted < batchSize)
                return total;
        }
    }
}
