using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal static class JobCommands
{
    public static Command Build(Runner run)
    {
        var init = new Command("init", "Write a job configuration template (job.tp.toml)");
        init.SetAction(run(async (c, p, ct) =>
        {
            var template = await c.Client.GetJobTemplateAsync(ct);
            var file = "job.tp.toml";
            for (var i = 1; File.Exists(file); i++)
                file = $"job{i}.tp.toml";
            await File.WriteAllTextAsync(file, template.EmptyTpConfig, ct);
            c.Print(new { file }, $"Wrote {file}. Edit it, then: openpool job push {file} <cluster_id>");
            return 0;
        }));

        var config = new Argument<string>("config") { Description = "The .tp.toml file" };
        var cluster = new Argument<string>("cluster_id");
        var teardown = new Option<bool>("--teardown") { Description = "Destroy the cluster when the job ends" };
        var projectDir = new Option<string?>("--dir") { Description = "The project directory to upload (default: the current one)" };
        var push = new Command("push", "Upload this directory and run the job on a cluster") { config, cluster, teardown, projectDir };
        push.SetAction(run(async (c, p, ct) =>
        {
            var toml = await File.ReadAllTextAsync(p.GetValue(config)!, ct);
            var result = await c.Client.PushJobAsync(toml, p.GetValue(cluster)!, p.GetValue(projectDir) ?? Directory.GetCurrentDirectory(), p.GetValue(teardown),
                c.Json ? null : m => c.Out.WriteLine(m), ct);
            if (c.Json)
                c.Print(new { job_id = result.JobId, messages = result.Messages, succeeded = result.Succeeded }, null);
            if (!result.Succeeded)
                throw new CliError(result.Messages.Count > 0 ? result.Messages[^1] : result.CloseReason ?? "The push failed.");
            return 0;
        }));

        var jobId = new Argument<string>("job_id");
        var org = new Option<bool>("--org", "--organization") { Description = "Your organization's jobs instead of yours" };
        var list = Show(run, "list", "List jobs", (c, p, ct) => c.Client.ListJobsAsync(p.GetValue(org), ct), r => r.Message, org).WithAlias("ls");
        var info = Show(run, "info", "Show a job", (c, p, ct) => c.Client.GetJobAsync(p.GetValue(jobId)!, ct), r => r.Message, jobId);

        var wait = new Option<bool>("--wait") { Description = "Wait until the job is canceled" };
        var cancel = new Command("cancel", "Cancel a job") { jobId, wait };
        cancel.SetAction(run(async (c, p, ct) =>
        {
            var id = p.GetValue(jobId)!;
            if (!c.Confirm($"Cancel job {id}?"))
                return 1;
            var result = await c.Client.CancelJobAsync(id, ct);
            if (!p.GetValue(wait))
            {
                c.Print(result, result.Message);
                return 0;
            }
            while (true)
            {
                var job = (await c.Client.GetJobAsync(id, ct)).JobInfo;
                if (JobStatuses.IsTerminal(job.Status))
                {
                    c.Print(job, $"Job {id} is {job.Status}.");
                    return job.Status == JobStatuses.Canceled ? 0 : 1;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        }));

        var delete = new Command("delete", "Delete a finished job") { jobId };
        delete.SetAction(run(async (c, p, ct) =>
        {
            if (!c.Confirm($"Delete job {p.GetValue(jobId)} and its record?"))
                return 1;
            var result = await c.Client.DeleteJobAsync(p.GetValue(jobId)!, ct);
            c.Print(result, result.Message);
            return 0;
        }));

        var listen = new Command("listen", "Follow a job's output") { jobId };
        listen.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.ListenJobAsync(p.GetValue(jobId)!, c.Json ? null : m => c.Out.WriteLine(m), ct);
            if (c.Json)
                c.Print(new { job_id = result.JobId, status = result.FinalStatus, messages = result.Messages }, null);
            return result.FinalStatus == "success" ? 0 : 1;
        }));

        var force = new Option<bool>("--force") { Description = "Overwrite files that exist" };
        var destination = new Option<string?>("--dir") { Description = "Where to write the files (default: the current directory)" };
        var pull = new Command("pull", "Download a job's outputs into this directory") { jobId, force, destination };
        pull.SetAction(run(async (c, p, ct) =>
        {
            var files = await c.Client.DownloadJobOutputsAsync(p.GetValue(jobId)!, p.GetValue(destination) ?? Directory.GetCurrentDirectory(), p.GetValue(force),
                c.Json ? null : new Reporter<string>(f => c.Err.WriteLine($"downloaded {f}")), ct);
            c.Print(new { files }, files.Count == 0 ? "No new files to pull." : $"Pulled {files.Count} file(s).");
            return 0;
        }));

        return Group("job", "Run jobs on clusters", init, push, list, info, cancel, delete, listen, pull);
    }
}

internal sealed class Reporter<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
