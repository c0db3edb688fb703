namespace OpenPool.Cli;

internal static class EntryPoint
{
    public static Task<int> Main(string[] args) => CliApp.RunAsync(args, Console.Out, Console.Error, Console.In, client: null);
}
