using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Bitcask.Server.Tests.Infrastructure;

/// <summary>A real redis-server on a free loopback port, in a temporary directory; killed on dispose.</summary>
public sealed class RedisServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private RedisServerProcess(Process process, int port, string directory)
    {
        _process = process;
        Port = port;
        _directory = directory;
    }

    public int Port { get; }

    /// <summary>A loopback port to listen on (<see cref="Bitcask.Testing.TestPorts"/>).</summary>
    public static int FreePort() => Bitcask.Testing.TestPorts.Free();

    public static RedisServerProcess Start(params string[] extra)
    {
        var directory = Path.Combine(Path.GetTempPath(), "bitcask-redis-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var port = FreePort();
        var psi = new ProcessStartInfo(Tools.Find("redis-server")!) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (var a in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--dir", directory, "--daemonize", "no" }.Concat(extra))
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var probe = RespConnection.Open(port);
                if (probe.Call("PING") is RespSimple { Text: "PONG" }) break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                Thread.Sleep(50);
            }
        }
        return new RedisServerProcess(process, port, directory);
    }

    public void Dispose()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit();
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
