namespace Bitcask.CliTests;

/// <summary>../shared/RELIABILITY.md §7 item 31: hostile arguments get one clear line and exit code 2, never a stack trace,
/// and never a write outside the chosen target.</summary>
public class HostileArgumentTests
{
    public static TheoryData<string> ReadCommands => new() { "verify", "dump", "stats", "scan", "export", "repair", "compact" };

    [Theory]
    [MemberData(nameof(ReadCommands))]
    public void Missing_directory_file_instead_of_directory_and_non_store_directory_exit_2_with_one_line(string command)
    {
        using var temp = new TempDirectory("hostile");
        var file = temp.File("plain.txt");
        File.WriteAllText(file, "not a store");
        var empty = temp.File("empty");
        Directory.CreateDirectory(empty);
        Directory.CreateDirectory(temp.File("other"));
        File.WriteAllText(Path.Combine(temp.File("other"), "notes.txt"), "x");
        foreach (var (path, words) in new[] { (temp.File("missing"), "does not exist"), (file, "is a file"), (empty, "not a Bitcask store"), (temp.File("other"), "not a Bitcask store") })
        {
            var r = Cli.Run(command, path);
            Assert.Equal(2, r.Code);
            Cli.AssertOneCleanErrorLine(r);
            Assert.Contains(words, r.Err);
        }
        Assert.False(Directory.Exists(temp.File("missing")));
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(temp.File("other")).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFileSystemEntries(empty));
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("verify", "--no-such-option", "x")]
    [InlineData("dump", "x", "--segment", "abc")]
    [InlineData("scan", "x", "--limit", "-1")]
    [InlineData("bench", "--keys", "5")]
    [InlineData("verify")]
    [InlineData("get", "x")]
    public void Usage_errors_exit_2_and_point_at_help(params string[] args)
    {
        var r = Cli.Run(args);
        Assert.Equal(2, r.Code);
        Cli.AssertOneCleanErrorLine(r);
        Assert.Contains("--help", r.Err);
    }

    [Fact]
    public void Every_command_has_help_with_an_example()
    {
        foreach (var command in new[] { "verify", "dump", "stats", "get", "put", "delete", "scan", "export", "import", "compact", "repair", "backup", "bench" })
        {
            var r = Cli.Run(command, "--help");
            Assert.Equal(0, r.Code);
            Assert.Contains("Example", r.Out);
            Assert.Contains($"bitcask {command}", r.Out);
        }
    }

    [Fact]
    public void Bad_ttl_is_refused_before_anything_is_written()
    {
        using var temp = new TempDirectory("ttl");
        var dir = temp.File("s");
        foreach (var ttl in new[] { "-5s", "0s", "forever", "1e400s", "99999999999d" })
        {
            var r = Cli.Run("put", dir, "k", "v", "--ttl", ttl);
            Assert.Equal(2, r.Code);
            Cli.AssertOneCleanErrorLine(r);
        }
        Assert.False(Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*.seg").Any());
    }

    [Fact]
    public void An_argument_starting_with_at_is_a_key_not_a_response_file()
    {
        using var temp = new TempDirectory("at");
        var dir = temp.File("s");
        Assert.Equal(0, Cli.Run("put", dir, "@/etc/passwd", "v").Code);
        Assert.Equal("v\n", Cli.Run("get", dir, "@/etc/passwd").Out);
    }

    [Fact]
    public void Relative_paths_with_dot_dot_and_long_unicode_names_are_taken_as_given()
    {
        using var temp = new TempDirectory("unicode");
        var name = string.Concat(Enumerable.Repeat("éñü日", 25))[..100]; // 100 characters, under 255 bytes
        var dir = Path.Combine(temp.Path, name);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(Cli.Sample("v1-healthy"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        Assert.Equal(0, Cli.Run("verify", dir).Code);
        var dotted = Path.Combine(dir, "..", name);
        Assert.Equal(0, Cli.Run("verify", dotted).Code);
        var missing = Cli.Run("verify", Path.Combine(temp.Path, "..", "..", "no-such-" + name));
        Assert.Equal(2, missing.Code);
        Cli.AssertOneCleanErrorLine(missing);
    }

    [Fact]
    public void Unreadable_segment_is_reported_not_thrown()
    {
        if (OperatingSystem.IsWindows() || Environment.UserName == "root") return; // root reads everything: the case cannot be set up
        using var temp = new TempDirectory("perm");
        var dir = Cli.CopySample(temp, "v1-healthy");
        var seg = Directory.GetFiles(dir, "*.seg").First();
        File.SetUnixFileMode(seg, UnixFileMode.None);
        var r = Cli.Run("verify", dir);
        Assert.Equal(2, r.Code);
        Cli.AssertOneCleanErrorLine(r);
    }
}
