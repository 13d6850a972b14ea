using System.Text.Json;

namespace Bitcask.CrashTests.Infrastructure;

/// <summary>
/// Runs the real <c>bitcask</c> CLI in-process (<see cref="Bitcask.Cli.Program.Run(string[], TextWriter, TextWriter, Stream?)"/>)
/// on a copy of a <see cref="FaultFileSystem"/> store written to a temporary directory, and checks that <c>verify</c>
/// changed no byte of it.
/// </summary>
internal static class VerifyCli
{
    public sealed record Problem(string File, long Offset, string Kind, string Message)
    {
        public override string ToString() => $"{File}:{Offset}: {Kind}: {Message}";
    }

    public sealed record Report(int Code, IReadOnlyList<Problem> Problems, string Error)
    {
        public override string ToString() => $"exit {Code}; {(Problems.Count == 0 ? "no problems" : string.Join(" | ", Problems))}{(Error.Length > 0 ? "; stderr: " + Error.Trim() : "")}";
    }

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Bitcask.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary><c>bitcask verify DIR --json</c>, parsed; throws when verify changed any file.</summary>
    /// <param name="checkUnchanged">False beside a live writer (it changes the files meanwhile).</param>
    public static Report Verify(string directory, bool checkUnchanged = true)
    {
        var before = checkUnchanged ? Snapshot(directory) : [];
        var (code, stdout, stderr) = Run("verify", directory, "--json");
        var after = checkUnchanged ? Snapshot(directory) : [];
        if (!before.Keys.Order().SequenceEqual(after.Keys.Order()) || before.Any(kv => !kv.Value.AsSpan().SequenceEqual(after[kv.Key])))
            throw new Xunit.Sdk.XunitException($"bitcask verify changed the store at {directory}");
        var problems = new List<Problem>();
        if (code is 0 or 1)
        {
            using var doc = JsonDocument.Parse(stdout);
            foreach (var p in doc.RootElement.GetProperty("problems").EnumerateArray())
                problems.Add(new Problem(Path.GetFileName(p.GetProperty("file").GetString()!), p.GetProperty("offset").GetInt64(),
                    p.GetProperty("kind").GetString()!, p.GetProperty("message").GetString()!));
        }
        return new Report(code, problems, stderr);
    }

    /// <summary>Verify of the store in <paramref name="fs"/> (current bytes, as a process kill would leave them).</summary>
    /// <param name="withoutHints">Leave hint files out of the copy, so that verify checks the segments only.</param>
    public static Report Verify(FaultFileSystem fs, string storeDirectory = Workloads.Directory, bool withoutHints = false)
    {
        var dir = Materialize(fs, storeDirectory);
        if (withoutHints) foreach (var hint in Directory.GetFiles(dir, "*.hint")) File.Delete(hint);
        try { return Verify(dir); }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Writes every file of <paramref name="storeDirectory"/> (and its subdirectories) in <paramref name="fs"/> to a new
    /// temporary directory and returns its path.</summary>
    public static string Materialize(FaultFileSystem fs, string storeDirectory = Workloads.Directory)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-verify", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var prefix = storeDirectory.TrimEnd('/') + "/";
        foreach (var file in fs.Files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var target = Path.Combine(dir, file[prefix.Length..]);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.WriteAllBytes(target, fs.ReadAllBytes(file));
        }
        return dir;
    }

    /// <summary>Every file's bytes; LOCK is left out (a live writer holds it exclusively, so it cannot be read).</summary>
    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "LOCK").ToDictionary(f => f, File.ReadAllBytes);
}
