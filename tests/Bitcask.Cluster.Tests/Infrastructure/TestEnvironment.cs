using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bitcask.Cluster.Tests.Infrastructure;

/// <summary>Ports, temporary directories and the soak switch.</summary>
internal static class TestEnvironment
{
    /// <summary>A loopback port to listen on (<see cref="Bitcask.Testing.TestPorts"/>).</summary>
    public static int FreePort() => Bitcask.Testing.TestPorts.Free();

    public static string NewDirectory(string what)
    {
        var path = Path.Combine(Path.GetTempPath(), $"bitcask-{what}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static void DeleteDirectory(string path)
    {
        try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>BITCASK_SOAK=&lt;seconds&gt;: how long a fault loop runs instead of its short CI variant (null: not set).</summary>
    public static TimeSpan? Soak =>
        int.TryParse(Environment.GetEnvironmentVariable("BITCASK_SOAK"), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds) : null;

    /// <summary>The repository root (the folder with Bitcask.sln above the test output).</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Bitcask.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("no Bitcask.sln above " + AppContext.BaseDirectory);
    }
}
