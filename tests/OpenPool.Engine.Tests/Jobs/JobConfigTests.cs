using OpenPool.Engine.Jobs;

namespace OpenPool.Engine.Tests.Jobs;

public sealed class JobConfigTests
{
    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r")]
    [InlineData("\n")]
    public void Line_endings_never_reach_commands_outputs_or_ignore(string newline)
    {
        var text = string.Join(newline, "commands = [\"\"\"", "cd src", "python3 train.py", "\"\"\", \"echo done\"]",
            "outputs = [\"\"\"results/", "\"\"\"]", "ignore = [\".*\", \"\"\"*.pyc", "\"\"\"]", "");

        Assert.True(JobConfig.TryParse(text, out var config, out var error), error);

        Assert.Equal(["cd src\npython3 train.py\n", "echo done"], config!.Commands);
        Assert.Equal(["results/\n"], config.Outputs);
        Assert.Equal([".*", "*.pyc\n"], config.Ignore);
    }

    [Fact]
    public void Ignore_may_anchor_to_the_root_but_not_leave_the_project()
    {
        Assert.True(JobConfig.TryParse("commands = [\"ls\"]\nignore = [\"/data\", \"!/data/keep\"]", out _, out var error), error);
        Assert.False(JobConfig.TryParse("commands = [\"ls\"]\nignore = [\"../x\"]", out _, out error));
        Assert.Contains("../x", error);
        Assert.False(JobConfig.TryParse("commands = [\"ls\"]\noutputs = [\"/etc/passwd\"]", out _, out error));
        Assert.Contains("/etc/passwd", error);
    }
}
