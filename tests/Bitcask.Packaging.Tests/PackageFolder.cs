using System.Diagnostics;
using System.Reflection;

namespace Bitcask.Packaging.Tests;

/// <summary>
/// Where <c>.ci/run</c> puts the packed packages (<c>artifacts/packages</c> at the repository root, or
/// <c>BITCASK_PACKAGES</c>) and the version they must carry: the one version of every package, which the root
/// Directory.Build.props also gives this test assembly.
/// </summary>
internal static class PackageFolder
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Path { get; } =
        Environment.GetEnvironmentVariable("BITCASK_PACKAGES") is { Length: > 0 } env
            ? System.IO.Path.GetFullPath(env)
            : System.IO.Path.Combine(RepositoryRoot, "artifacts", "packages");

    public static string Version { get; } =
        typeof(PackageFolder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];

    /// <summary>The packages every test expects: the core, the hosting integration and the tool.</summary>
    public static readonly string[] Libraries = ["Bitcask", "Bitcask.Extensions.Hosting"];
    public const string Tool = "Bitcask.Cli";

    public static string Nupkg(string id) => System.IO.Path.Combine(Path, $"{id}.{Version}.nupkg");
    public static string Snupkg(string id) => System.IO.Path.Combine(Path, $"{id}.{Version}.snupkg");

    /// <summary>Null when the packages are there; otherwise why the packaging tests cannot run.</summary>
    public static string? MissingReason()
    {
        if (!Directory.Exists(Path))
            return $"No package folder at {Path}: run .ci/run, or `dotnet pack Bitcask.sln -c Release -o artifacts/packages`, first.";
        if (!File.Exists(Nupkg("Bitcask")))
            return $"{Nupkg("Bitcask")} is missing: the packages in {Path} are not from this version ({Version}); pack again.";
        return null;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Bitcask.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No Bitcask.sln above {AppContext.BaseDirectory}.");
    }
}

/// <summary>A fact that is skipped, with the reason, when the package folder that <c>.ci/run</c> fills is absent.</summary>
public sealed class PackagesFactAttribute : FactAttribute
{
    public PackagesFactAttribute()
    {
        if (PackageFolder.MissingReason() is { } reason) Skip = reason;
    }
}

/// <summary>Runs <c>dotnet</c> as a child process with a clean MSBuild environment (not the test host's).</summary>
internal static class Dotnet
{
    public static (int ExitCode, string Output) Run(string workingDirectory, TimeSpan timeout, IDictionary<string, string?>? env, params string[] args)
        => RunProgram(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet",
            workingDirectory, timeout, env, args);

    public static (int ExitCode, string Output) RunProgram(string program, string workingDirectory, TimeSpan timeout, IDictionary<string, string?>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The test host runs under `dotnet test`, whose MSBuild variables would point a child build at the wrong SDK state.
        foreach (var key in psi.Environment.Keys.ToList())
            if (key.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish within {timeout}.");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
