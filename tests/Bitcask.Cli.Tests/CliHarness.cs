using Bitcask.Cli;

namespace Bitcask.CliTests;

/// <summary>Runs the real CLI entry point in-process and captures its output.</summary>
internal static class Cli
{
    public sealed record Result(int Code, string Out, string Err)
    {
        public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static Result Run(params string[] args) => RunWithInput(null, args);

    public static Result RunWithInput(byte[]? stdin, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, stdin is null ? null : new MemoryStream(stdin));
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The repository's data-samples/ directory.</summary>
    public static string SamplesRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "data-samples");
                if (Directory.Exists(Path.Combine(candidate, "v1-healthy"))) return candidate;
            }
            throw new DirectoryNotFoundException("data-samples/ not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Sample(string name) => Path.Combine(SamplesRoot, name);

    /// <summary>A writable copy of a sample in <paramref name="temp"/>.</summary>
    public static string CopySample(TempDirectory temp, string name)
    {
        var target = temp.File(name);
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(Sample(name))) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        return target;
    }

    /// <summary>Every file under a directory with its bytes and last-write time.</summary>
    public static Dictionary<string, (byte[] Bytes, DateTime Written)> Snapshot(string dir, bool skipLock = false) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => !skipLock || Path.GetFileName(f) != "LOCK").ToDictionary(
            f => Path.GetRelativePath(dir, f), f => (File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f)));

    public static void AssertUnchanged(Dictionary<string, (byte[] Bytes, DateTime Written)> before, string dir, bool skipLock = false)
    {
        var after = Snapshot(dir, skipLock);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, (bytes, written)) in before)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(after[name].Bytes), $"{name} changed");
            Assert.Equal(written, after[name].Written);
        }
    }

    public static void AssertOneCleanErrorLine(Result r)
    {
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.StartsWith("bitcask: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Err);
        Assert.DoesNotContain("Exception:", r.Err);
    }
}

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string? name = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bitcask-cli-tests", (name ?? "t") + "-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
