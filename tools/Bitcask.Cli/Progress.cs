using Spectre.Console;

namespace Bitcask.Cli;

/// <summary>A progress bar on stderr for work that can take more than a second; nothing at all when stderr is not a terminal.</summary>
internal static class ProgressBar
{
    /// <summary>Runs <paramref name="work"/>, handing it a (done, total) callback that moves the bar.</summary>
    public static T Run<T>(CliContext context, string description, Func<Action<long, long>?, T> work)
    {
        if (!context.ShowProgress) return work(null);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        var result = default(T)!;
        console.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(description, maxValue: 1);
                result = work((done, total) =>
                {
                    task.MaxValue = Math.Max(1, total);
                    task.Value = Math.Min(done, task.MaxValue);
                });
                task.Value = task.MaxValue;
            });
        return result;
    }
}
