using System.Diagnostics;

namespace Bitcask.Server.Tests.Infrastructure;

/// <summary>A child 'bitcask serve' process on a free port (the crash and connection-limit tests).</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServeProcess(string directory, string durability, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Tools.CliDll(), "serve", directory, "--port", "0", "--durability", durability }.Concat(extra)) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) =>
        {
            const string marker = "Ready to accept connections on ";
            if (e.Data?.StartsWith(marker, StringComparison.Ordinal) == true)
                _ready.TrySetResult(int.Parse(e.Data[marker.Length..].Split(' ')[0].Split(':')[^1]));
        };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int WaitReady()
    {
        Assert.True(_ready.Task.Wait(TimeSpan.FromSeconds(120)), "bitcask serve did not start");
        return _ready.Task.Result;
    }

    public void Kill9()
    {
        _process.Kill(entireProcessTree: true); // SIGKILL
        _process.WaitForExit();
    }

    public int Terminate()
    {
        Process.Start("kill", ["-TERM", _process.Id.ToString()])!.WaitForExit();
        Assert.True(_process.WaitForExit(60_000), "bitcask serve did not stop on SIGTERM");
        return _process.ExitCode;
    }

    /// <summary>The server process's resident memory in bytes (VmRSS).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    public void Dispose()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
