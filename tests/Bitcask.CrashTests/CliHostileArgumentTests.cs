using System.Security.Cryptography;
using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// CLI hostile arguments (../shared/RELIABILITY.md §7 item 31), the cases the CLI's own tests (tests/Bitcask.Cli.Tests,
/// HostileArgumentTests) do not cover: symlinked store directory and segments, an output path that is a symlink to a
/// data file, a directory held by a live writer process. Pass: read-only commands change no byte anywhere (hashes before
/// and after, including symlink targets outside the store), nothing is written outside the output target, exit codes
/// 0/1/2 as documented, problems reported as file:offset.
/// </summary>
[Collection("processes")]
public class CliHostileArgumentTests(ITestOutputHelper output)
{
    private static Dictionary<string, string> Hashes(params string[] roots)
    {
        var result = new Dictionary<string, string>();
        foreach (var root in roots)
            foreach (var f in Directory.GetFiles(root, "*", SearchOption.AllDirectories))
                result[f] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));
        return result;
    }

    private static void AssertSameHashes(Dictionary<string, string> before, Dictionary<string, string> after, string context)
    {
        Assert.True(before.Keys.Order().SequenceEqual(after.Keys.Order()), $"{context}: files appeared or vanished: {string.Join(", ", after.Keys.Except(before.Keys).Concat(before.Keys.Except(after.Keys)))}");
        foreach (var (f, h) in before) Assert.True(after[f] == h, $"{context}: {f} changed");
    }

    /// <summary>A closed store with several segments (64 KiB), some overwrites and deletes.</summary>
    private static void BuildStore(string dir)
    {
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { MaxSegmentBytes = 64 << 10, MaxValueBytes = 8192, CompactionEnabled = false });
        for (var i = 0; i < 400; i++)
        {
            var key = "k" + i % 50;
            if (i % 13 == 12) store.Delete(Workloads.B(key));
            else store.Put(Workloads.B(key), Oracle.MakeValue(key, i, 300 + i % 200));
        }
    }

    [Fact]
    public void Read_only_commands_through_a_symlinked_store_and_symlinked_segments_change_no_byte_anywhere()
    {
        using var temp = new ProcessCrashTests.TempDir();
        var real = Path.Combine(temp.Path, "real");
        var elsewhere = Path.Combine(temp.Path, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        BuildStore(real);
        // Move the oldest segment out of the store and leave a symlink to it; link the whole store too.
        var segment = Directory.GetFiles(real, "*.seg").Order().First();
        var moved = Path.Combine(elsewhere, Path.GetFileName(segment));
        File.Move(segment, moved);
        File.CreateSymbolicLink(segment, moved);
        var link = Path.Combine(temp.Path, "link");
        Directory.CreateSymbolicLink(link, real);
        var exportFile = Path.Combine(temp.Path, "out.jsonl");
        var before = Hashes(real, elsewhere);
        foreach (var args in new[]
                 {
                     new[] { "verify", link }, ["verify", link, "--json"], ["dump", link, "--keys-only"], ["stats", link], ["get", link, "k1"],
                     ["scan", link, "--limit", "5"], ["export", link, "--out", exportFile],
                 })
        {
            var (code, stdout, stderr) = VerifyCli.Run(args);
            Assert.True(code == 0, $"{string.Join(' ', args)}: exit {code}: {stderr}{stdout[..Math.Min(stdout.Length, 300)]}");
            AssertSameHashes(before, Hashes(real, elsewhere), string.Join(' ', args));
        }
        Assert.True(File.Exists(exportFile));
        Assert.True(File.Exists(moved) && !new FileInfo(moved).Attributes.HasFlag(FileAttributes.ReparsePoint), "the symlink target must stay a plain file");
    }

    [Fact]
    public void Export_to_a_symlink_that_points_at_a_segment_never_writes_into_the_segment()
    {
        using var temp = new ProcessCrashTests.TempDir();
        var dir = Path.Combine(temp.Path, "store");
        BuildStore(dir);
        var segment = Directory.GetFiles(dir, "*.seg").Order().First();
        var sneaky = Path.Combine(temp.Path, "backup.jsonl");
        File.CreateSymbolicLink(sneaky, segment);
        var before = Hashes(dir);
        var (code, _, stderr) = VerifyCli.Run("export", dir, "--out", sneaky);
        output.WriteLine($"export --out <symlink to a segment>: exit {code} {stderr.Trim()}");
        Assert.True(code is 0 or 2, $"exit {code}");
        AssertSameHashes(before, Hashes(dir), "export through a symlink");
        Assert.Equal(0, VerifyCli.Run("verify", dir).Code);
    }

    [Fact]
    public void Beside_a_live_writer_process_verify_and_dump_change_nothing_and_writing_commands_exit_2_naming_the_lock()
    {
        using var temp = new ProcessCrashTests.TempDir();
        using var child = ProcessCrashTests.Child.Start(temp.Path, Durability.Synced, CrashCampaign.BaseSeed, compact: false);
        Assert.True(child.WaitReady(), "the writer process never opened the store");
        // Let it seal at least one segment (a loaded machine can take a while).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Directory.GetFiles(temp.Path, "*.seg").Length < 2 && DateTime.UtcNow < deadline && !child.Process.HasExited) Thread.Sleep(50);
        Assert.True(Directory.GetFiles(temp.Path, "*.seg").Length >= 2, "the writer should have sealed a segment by now");
        for (var round = 0; round < 5; round++)
        {
            // A read-only command sees what the writer handed to the OS when it started: at worst a torn tail being appended.
            // The writer only appends to its newest segment (no compaction in this child): every older segment must keep its bytes.
            var sealedBefore = Directory.GetFiles(temp.Path, "*.seg").Order().SkipLast(1).ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
            var report = VerifyCli.Verify(temp.Path, checkUnchanged: false);
            Assert.True(report.Code is 0 or 1, $"verify beside a writer: {report}");
            Assert.True(report.Problems.All(p => p.Kind == "torn tail"),
                $"verify beside a writer reported damage: {report}");
            var dump = VerifyCli.Run("dump", temp.Path, "--keys-only");
            Assert.True(dump.Code is 0 or 1, $"dump beside a writer: exit {dump.Code}: {dump.Err}");
            foreach (var (f, h) in sealedBefore) Assert.True(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))) == h, $"{f} changed");
        }
        foreach (var args in new[] { new[] { "put", temp.Path, "k", "v" }, ["delete", temp.Path, "t0k1"], ["compact", temp.Path], ["repair", temp.Path] })
        {
            var (code, stdout, stderr) = VerifyCli.Run(args);
            Assert.True(code == 2, $"{args[0]} beside a live writer: exit {code}: {stderr}{stdout}");
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains("lock", stderr, StringComparison.OrdinalIgnoreCase);
        }
        Assert.False(child.Process.HasExited, "the writer died while the CLI ran beside it");
    }
}
