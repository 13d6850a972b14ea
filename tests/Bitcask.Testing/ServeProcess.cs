using System.Diagnostics;
using System.Globalization;

namespace Bitcask.Testing;

/// <summary>
/// A 'bitcask serve' child process (the built CLI run with dotnet): waits for its Ready line, kills it with SIGKILL (the
/// crash case) or stops it with SIGTERM (graceful), and keeps the last lines it printed for failure messages. Dispose
/// kills it if it still runs, so a failing test never leaves a server behind. Not thread-safe except
/// <see cref="Kill9"/>, <see cref="HasExited"/> and <see cref="RecentOutput"/>.
/// </summary>
public sealed class ServeProcess : IDisposable
{
    private const string ReadyMarker = "Ready to accept connections on ";
    private readonly Process _process;
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Queue<string> _recent = new();

    /// <summary>Starts <c>bitcask serve</c> with <paramref name="arguments"/> (everything after "serve": DIR and
    /// options).</summary>
    public ServeProcess(IEnumerable<string> arguments, string? name = null)
    {
        Arguments = [.. arguments];
        Name = name ?? "bitcask serve";
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(CliDll());
        psi.ArgumentList.Add("serve");
        foreach (var a in Arguments) psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Remember(e.Data);
            if (e.Data.StartsWith(ReadyMarker, StringComparison.Ordinal)) _ready.TrySetResult(e.Data);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) Remember("stderr: " + e.Data);
        };
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"{Name} exited before it was ready"));
        _process.EnableRaisingEvents = true;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The arguments after "serve" (to start the same node again).</summary>
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>A name for messages (e.g. the node's address).</summary>
    public string Name { get; }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code (after it exited).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>The Ready line (after <see cref="WaitReady"/>).</summary>
    public string ReadyLine => _ready.Task.IsCompletedSuccessfully ? _ready.Task.Result : throw new InvalidOperationException($"{Name} is not ready");

    /// <summary>Waits for the Ready line and returns the RESP port it names.</summary>
    public int WaitReady(TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(120);
        try
        {
            if (!_ready.Task.Wait(limit)) throw new TimeoutException($"{Name} printed no Ready line within {limit.TotalSeconds} s; last output:\n{RecentOutput()}");
        }
        catch (AggregateException e)
        {
            _process.WaitForExit();
            throw new InvalidOperationException($"{e.InnerException?.Message} (exit code {_process.ExitCode}); last output:\n{RecentOutput()}");
        }
        return PortOf(_ready.Task.Result);
    }

    /// <summary>The port of "Ready to accept connections on ADDRESS:PORT ...".</summary>
    public static int PortOf(string readyLine) =>
        int.Parse(readyLine[ReadyMarker.Length..].Split(' ')[0].Split(':')[^1], CultureInfo.InvariantCulture);

    /// <summary>SIGKILL, and waits until the process is gone.</summary>
    public void Kill9()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit();
    }

    /// <summary>SIGTERM; waits for the exit and returns its code (throws when it does not stop in time).</summary>
    public int Terminate(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill?.WaitForExit();
        }
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!_process.WaitForExit((int)limit.TotalMilliseconds))
            throw new TimeoutException($"{Name} did not stop within {limit.TotalSeconds} s of SIGTERM; last output:\n{RecentOutput()}");
        _process.WaitForExit(); // drains the output readers
        return _process.ExitCode;
    }

    /// <summary>The last lines the process printed (stdout, and stderr prefixed "stderr: ").</summary>
    public string RecentOutput()
    {
        lock (_recent) return string.Join("\n", _recent);
    }

    private void Remember(string line)
    {
        lock (_recent)
        {
            _recent.Enqueue(line.Length > 300 ? line[..300] + " …" : line);
            while (_recent.Count > 60) _recent.Dequeue();
        }
    }

    /// <summary>The server process's resident memory in bytes (VmRSS from /proc).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    public void Dispose()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        try { _process.WaitForExit(10_000); } catch (InvalidOperationException) { }
        _process.Dispose();
    }

    /// <summary>The built 'bitcask' CLI (Bitcask.Cli.dll beside this configuration's test output; the test project
    /// references tools/Bitcask.Cli with ReferenceOutputAssembly=false so it is built first).</summary>
    public static string CliDll()
    {
        var baseDir = AppContext.BaseDirectory.TrimEnd('/');
        var config = new DirectoryInfo(baseDir).Parent!.Name; // .../bin/<Config>/net10.0
        var dll = Path.GetFullPath(Path.Combine(baseDir, "../../../../../tools/Bitcask.Cli/bin", config, "net10.0/Bitcask.Cli.dll"));
        if (!File.Exists(dll)) throw new FileNotFoundException($"the CLI is not built at {dll}", dll);
        return dll;
    }

    /// <summary>Runs the CLI (<c>bitcask ARGS</c>) to completion: exit code, stdout, stderr.</summary>
    public static (int ExitCode, string Output, string Error) RunCli(IEnumerable<string> arguments, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(CliDll());
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!process.WaitForExit((int)limit.TotalMilliseconds))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bitcask {string.Join(' ', arguments)} did not finish within {limit.TotalSeconds} s");
        }
        return (process.ExitCode, output.Result, error.Result);
    }
}
