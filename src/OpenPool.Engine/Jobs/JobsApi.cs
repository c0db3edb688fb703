using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Http;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Jobs;

internal static class JobsApi
{
    public static void MapJobs(this WebApplication app)
    {
        app.MapGet("/job/init", () => Results.Json(new JobInitResponse
            {
                EmptyTpConfig = JobConfig.Template,
                Message = "Edit the commands, outputs and ignore lists, then run: tp job push <file>.tp.toml <cluster_id>",
            }, ApiJson.Options))
            .WithTags("job").WithSummary("Job configuration template").Produces<JobInitResponse>();
        app.MapGet("/job/list", ListAsync).WithTags("job").WithSummary("List jobs").Produces<JobListResponse>();
        app.MapGet("/job/info/{job_id}", InfoAsync).WithTags("job").WithSummary("Get job information")
            .Produces<JobInfoResponse>().Produces<ErrorResponse>(404);
        app.MapPost("/job/cancel/{job_id}", CancelAsync).WithTags("job").WithSummary("Cancel a job")
            .Produces<JobCancelResponse>(StatusCodes.Status202Accepted).Produces<JobCancelResponse>().Produces<ErrorResponse>(409);
        app.MapDelete("/job/delete/{job_id}", DeleteAsync).WithTags("job").WithSummary("Delete a finished job")
            .Produces<MessageResponse>().Produces<ErrorResponse>(409);
        app.MapGet("/job/pull/{job_id}", PullAsync).WithTags("job").WithSummary("Pull job output files")
            .WithDescription("download_map maps each file matched by the job's outputs to a signed URL, fetched with a plain GET and no key.")
            .Produces<JobPullResponse>();

        // Reached with a signed URL instead of a key: the client's tar | curl, and pull's downloads.
        // One byte over the upload limit gets through, so the provider sees it and answers
        // upload_too_large rather than the server's bare "body too large".
        var maxUpload = app.Services.GetRequiredService<IOptions<JobsOptions>>().Value.MaxUploadBytes;
        app.MapPut("/job/upload/{job_id}", UploadAsync).NoKeyRequired().ExcludeFromDescription()
            .WithRequestSizeLimit(maxUpload + 1);
        app.MapGet("/job/download/{job_id}", DownloadAsync).NoKeyRequired().ExcludeFromDescription();
    }

    public static string PublicBase(HttpRequest request, JobsOptions options) =>
        (options.PublicUrl ?? $"{request.Scheme}://{request.Host}").TrimEnd('/');

    private static async Task<IResult> ListAsync(HttpContext context, JobStore jobs)
    {
        var includeOrg = Query.Bool(context.Request, "include_org");
        var list = await jobs.ListAsync(context.Caller(), includeOrg, context.RequestAborted);
        string message;
        if (list.Count == 0)
        {
            message = includeOrg ? "Your organization has no jobs." : "You have no jobs. Start one with: tp job init, then tp job push <file>.tp.toml <cluster_id>";
        }
        else
        {
            var table = new TextTable("JOB ID", "STATUS", "EXIT", "CLUSTER", "CREATED", "FIRST COMMAND");
            foreach (var j in list)
                table.Add(j.Id, j.Status, j.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-", j.ClusterId, TextTable.When(j.CreatedAt), j.CommandList.Count > 0 ? j.CommandList[0] : "");
            message = table.ToString();
        }
        return Results.Json(new JobListResponse { Message = message, Jobs = list.Select(j => j.ToInfo()).ToList() }, ApiJson.Options);
    }

    private static async Task<IResult> InfoAsync(string job_id, HttpContext context, JobStore jobs)
    {
        var job = await jobs.GetVisibleAsync(context.Caller(), job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Job {job.Id}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Status:     {job.Status}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Exit code:  {job.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-"}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Cluster:    {job.ClusterId} (node {job.InstanceId}){(job.TeardownCluster ? ", destroyed when the job ends" : "")}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Created:    {TextTable.When(job.CreatedAt)}\n");
        if (job.StartedAt is { } started)
            text.Append(CultureInfo.InvariantCulture, $"  Started:    {TextTable.When(started)}\n");
        if (job.FinishedAt is { } finished)
            text.Append(CultureInfo.InvariantCulture, $"  Finished:   {TextTable.When(finished)}\n");
        if (job.PublicMessage is not null)
            text.Append(CultureInfo.InvariantCulture, $"  Note:       {job.PublicMessage}\n");
        text.Append("  Commands:\n");
        var index = 1;
        foreach (var command in job.CommandList)
            text.Append(CultureInfo.InvariantCulture, $"    {index++}. {command}\n");
        return Results.Json(new JobInfoResponse { Message = text.ToString().TrimEnd('\n'), JobInfo = job.ToInfo() }, ApiJson.Options);
    }

    private static async Task<IResult> CancelAsync(string job_id, HttpContext context, JobStore jobs)
    {
        var job = await jobs.GetVisibleAsync(context.Caller(), job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        if (job.Status == JobStatuses.Canceled)
            return Results.Json(new JobCancelResponse { JobId = job.Id, Status = JobStatuses.Canceled, Message = $"Job {job.Id} is already canceled." }, ApiJson.Options);
        if (job.IsTerminal)
            throw ApiError.Conflict("job_finished", $"Job {job.Id} already ended ({job.Status}); there is nothing to cancel.");
        var status = await jobs.RequestCancelAsync(job.Id, context.RequestAborted);
        return Results.Json(new JobCancelResponse
        {
            JobId = job.Id,
            Status = status,
            Message = $"Canceling job {job.Id}. Follow it with: tp job info {job.Id}",
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> DeleteAsync(string job_id, HttpContext context, JobStore jobs, JobRunner runner)
    {
        var job = await jobs.GetVisibleAsync(context.Caller(), job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        if (!job.IsTerminal)
            throw ApiError.Conflict("job_not_finished", $"Job {job.Id} is {job.Status}; only finished jobs can be deleted. Cancel it first: tp job cancel {job.Id}");
        await jobs.DeleteAsync(job.Id, context.RequestAborted);
        await runner.Provider.DeleteJobAsync(job.Node, context.RequestAborted);
        return Results.Json(new MessageResponse { Message = $"Job {job.Id} deleted." }, ApiJson.Options);
    }

    private static async Task<IResult> PullAsync(string job_id, HttpContext context, JobStore jobs, JobRunner runner, SignedUrls urls)
    {
        var request = context.Request;
        var job = await jobs.GetVisibleAsync(context.Caller(), job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        var dryRun = Query.Bool(request, "dry_run");
        var only = request.Query["files"].Where(f => !string.IsNullOrEmpty(f)).Select(f => f!).ToHashSet(StringComparer.Ordinal);
        var matched = await runner.Provider.MatchOutputsAsync(job.Node, job.OutputList, context.RequestAborted);
        var files = only.Count > 0 ? matched.Paths.Where(only.Contains).ToList() : matched.Paths;

        var map = new Dictionary<string, string?>(StringComparer.Ordinal);
        var lifetime = TimeSpan.FromMinutes(runner.Options.DownloadUrlMinutes);
        var baseUrl = PublicBase(request, runner.Options);
        foreach (var file in files)
            map[file] = dryRun ? null
                : $"{baseUrl}/job/download/{job.Id}?path={Uri.EscapeDataString(file)}&{await urls.SignAsync("download", $"{job.Id}/{file}", lifetime)}";
        var message = files.Count == 0
            ? job.OutputList.Count == 0 ? $"Job {job.Id} lists no outputs in its configuration." : $"No files match the outputs of job {job.Id} yet."
            : $"{files.Count} file(s) from job {job.Id}{(job.IsTerminal ? "" : $" (still {job.Status}; files may change)")}." +
              (matched.Truncated ? $" The listing stopped early (at most {runner.Options.MaxPullFiles} files, 10 s); name the outputs more precisely to get the rest." : "");
        return Results.Json(new JobPullResponse { Message = message, DownloadMap = map }, ApiJson.Options);
    }

    private static async Task<IResult> UploadAsync(string job_id, HttpContext context, JobStore jobs, JobRunner runner, SignedUrls urls)
    {
        var request = context.Request;
        if (!await urls.VerifyAsync("upload", job_id, request.Query["expires"], request.Query["sig"]))
            throw ApiError.Forbidden("This upload link is invalid or has expired; push the job again.");
        var job = await jobs.GetAsync(job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        if (job.Status != JobStatuses.Pending || job.UploadReceivedAt is not null)
            throw ApiError.Conflict("upload_used", "This upload link was already used.");

        var limit = runner.Options.MaxUploadBytes;
        long received;
        try
        {
            received = await runner.Provider.ReceiveProjectAsync(job.Node, request.Body, limit, context.RequestAborted);
        }
        catch (JobUploadTooLargeException)
        {
            throw new ApiError(StatusCodes.Status413PayloadTooLarge, "upload_too_large",
                $"The project is larger than {limit / (1024 * 1024)} MB (Jobs:MaxUploadBytes). Add large files to 'ignore'.");
        }
        catch (JobUploadConflictException)
        {
            throw ApiError.Conflict("upload_used", "This upload link was already used.");
        }
        await jobs.MarkUploadedAsync(job.Id, context.RequestAborted);
        return Results.Json(new MessageResponse { Message = $"Received {received} bytes for job {job.Id}." }, ApiJson.Options);
    }

    private static async Task<IResult> DownloadAsync(string job_id, HttpContext context, JobStore jobs, JobRunner runner, SignedUrls urls)
    {
        var path = context.Request.Query["path"].ToString();
        if (!await urls.VerifyAsync("download", $"{job_id}/{path}", context.Request.Query["expires"], context.Request.Query["sig"]))
            throw ApiError.Forbidden("This download link is invalid or has expired; run tp job pull again.");
        var job = await jobs.GetAsync(job_id, context.RequestAborted) ?? throw JobStore.NotFound(job_id);
        var file = await runner.Provider.OpenOutputAsync(job.Node, path, context.RequestAborted)
            ?? throw ApiError.NotFound("file_not_found", $"{path} is not among the outputs of job {job_id}.");
        return Results.File(file, "application/octet-stream", Path.GetFileName(path));
    }
}
