using System.CommandLine;
using System.CommandLine.Help;
using Bitcask.Inspection;

namespace Bitcask.Cli;

/// <summary>
/// The <c>bitcask</c> command-line tool: a thin shell over the engine's public API (<see cref="BitcaskStore"/>) and its
/// inspection API (<see cref="StoreInspector"/>). Exit codes: 0 success / healthy, 1 problems found (or key not found),
/// 2 usage error, unusable directory, or the command could not run.
/// </summary>
public static class Program
{
    public const int Ok = 0, Problems = 1, Usage = 2;

    public static int Main(string[] args)
    {
        if (args is ["serve", ..] && args.Contains("--cluster-id"))
            QuietThreadPool();
        Console.OutputEncoding = new System.Text.UTF8Encoding(false);
        var context = new CliContext(Console.Out, Console.Error, Console.OpenStandardInput, Console.OpenStandardOutput,
            progress: !Console.IsErrorRedirected, stdoutIsTerminal: !Console.IsOutputRedirected);
        return Run(args, context);
    }

    /// <summary>A cluster node (issue 13) turns off the thread pool's spinning before its first work item: each write is a
    /// chain of short hand-offs (RESP, proposal queue, Raft round, log flush, apply), and a worker that spins (sched_yield)
    /// after each one burnt more CPU than the writes themselves (bench/NOTES.md, "Cluster commit latency"). Must run
    /// before the thread pool starts; the environment variable DOTNET_ThreadPool_UnfairSemaphoreSpinLimit still wins.</summary>
    private static void QuietThreadPool()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit") is null)
            AppContext.SetData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", "0");
    }

    /// <summary>Runs the tool in-process (tests): no progress bars, stdin empty unless given.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, Stream? stdin = null) =>
        Run(args, new CliContext(stdout, stderr, () => stdin ?? Stream.Null, null, progress: false, stdoutIsTerminal: false));

    internal static int Run(string[] args, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(args);
        var root = Commands.Build(context);
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) context.Err.WriteLine($"bitcask: {error.Message}");
            var name = parse.CommandResult.Command == root ? "bitcask" : $"bitcask {parse.CommandResult.Command.Name}";
            context.Err.WriteLine($"Run '{name} --help' for usage.");
            return Usage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Err, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            // Last resort: never a stack trace.
            context.Err.WriteLine($"bitcask: {Commands.Describe(e)}");
            return Usage;
        }
        finally
        {
            context.Out.Flush();
            context.Err.Flush();
        }
    }
}

/// <summary>Where a command reads and writes. Progress bars go to the real stderr only when it is a terminal.</summary>
internal sealed class CliContext(TextWriter stdout, TextWriter stderr, Func<Stream> stdin, Func<Stream>? rawStdout, bool progress, bool stdoutIsTerminal)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Err { get; } = stderr;
    public Func<Stream> OpenStdin { get; } = stdin;
    /// <summary>The byte stream behind <see cref="Out"/> when there is one (the real process); null in-process.</summary>
    public Func<Stream>? OpenRawStdout { get; } = rawStdout;
    public bool ShowProgress { get; } = progress;
    public bool StdoutIsTerminal { get; } = stdoutIsTerminal;
}
