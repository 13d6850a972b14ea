using System.Diagnostics;

namespace Bitcask.Server.Tests.Infrastructure;

/// <summary>The Redis command-line tools and server, when installed (.ci/run installs Debian's redis-tools and
/// redis-server).</summary>
public static class Tools
{
    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    public static (int ExitCode, string Output, string Error) Run(string program, IEnumerable<string> args, string? stdin = null, int timeoutSeconds = 120)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null) process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        if (!process.WaitForExit(timeoutSeconds * 1000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} did not finish in {timeoutSeconds} s");
        }
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>The built 'bitcask' CLI (Bitcask.Cli.dll, run with dotnet).</summary>
    public static string CliDll()
    {
        var baseDir = AppContext.BaseDirectory.TrimEnd('/');
        var config = new DirectoryInfo(baseDir).Parent!.Name; // .../bin/<Config>/net10.0
        var dll = Path.GetFullPath(Path.Combine(baseDir, "../../../../../tools/Bitcask.Cli/bin", config, "net10.0/Bitcask.Cli.dll"));
        Assert.True(File.Exists(dll), $"the CLI is not built at {dll}");
        return dll;
    }
}

/// <summary>A fact skipped, with the reason, where a Redis program is not installed.</summary>
public sealed class NeedsProgramFactAttribute : FactAttribute
{
    public NeedsProgramFactAttribute(string program)
    {
        if (Tools.Find(program) is null)
            Skip = $"{program} is not installed (Debian package {(program == "redis-server" ? "redis-server" : "redis-tools")}; .ci/run installs it)";
    }
}

/// <summary>A fact skipped, with the reason, where this process may not open <paramref name="descriptors"/> files (the
/// runtime raises the soft limit to the hard one at start; CI machines and this VM allow 20,000 or more).</summary>
public sealed class NeedsOpenFilesFactAttribute : FactAttribute
{
    public NeedsOpenFilesFactAttribute(int descriptors)
    {
        var limit = OpenFilesLimit();
        if (limit < descriptors) Skip = $"this process may open {limit} files; the test needs {descriptors} (raise the hard limit: ulimit -Hn)";
    }

    private static long OpenFilesLimit()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                    return soft == "unlimited" ? long.MaxValue : long.Parse(soft);
                }
        }
        catch (IOException)
        {
        }
        return long.MaxValue; // not Linux: let the test find out
    }
}
