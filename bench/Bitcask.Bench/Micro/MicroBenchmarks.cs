using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Bitcask.Bench.Micro;

/// <summary>
/// BenchmarkDotNet entry: every benchmark class in this assembly, with the memory diagnoser. By default a short job
/// in this process (3 warm-ups, 3 measured iterations: a few minutes for the whole suite on 2 cores); <c>--full</c>
/// uses BenchmarkDotNet's default job. Other arguments go to BenchmarkDotNet (e.g. <c>--filter '*KeyDir*'</c>).
/// </summary>
public static class MicroBenchmarks
{
    public static int Run(string[] args)
    {
        var full = args.Contains("--full");
        var rest = args.Where(a => a != "--full").ToArray();
        var job = (full ? Job.Default : Job.ShortRun).WithToolchain(InProcessEmitToolchain.Instance);
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(job)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(MicroBenchmarks).Assembly).Run(rest.Length == 0 ? ["--filter", "*"] : rest, config);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
