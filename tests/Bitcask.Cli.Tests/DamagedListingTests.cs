namespace Bitcask.CliTests;

/// <summary>scan and export on a damaged store list every readable key, say on stderr what they could not read, and exit
/// 1: an operator never mistakes a partial listing for a whole one.</summary>
public class DamagedListingTests
{
    [Theory]
    [InlineData("scan")]
    [InlineData("export")]
    public void A_healthy_store_is_listed_with_exit_0_and_no_warning(string command)
    {
        var r = Cli.Run(command, Cli.Sample("v2-healthy"));
        Assert.Equal(0, r.Code);
        Assert.DoesNotContain("warning", r.Err);
        Assert.Contains("user:002", r.Out);
    }

    [Theory]
    [InlineData("scan")]
    [InlineData("export")]
    public void A_record_that_fails_its_crc_when_read_is_skipped_named_on_stderr_and_the_exit_code_is_1(string command)
    {
        // v2-flipped-bit opens from its whole hint, so the damage shows only when user:002's value is read.
        var r = Cli.Run(command, Cli.Sample("v2-flipped-bit"));
        Assert.Equal(1, r.Code);
        Assert.Contains("warning: key \"user:002\" skipped", r.Err);
        Assert.Contains("1 unreadable key(s)", r.Err);
        Assert.DoesNotContain("user:002", r.Out);
        Assert.Contains("user:003", r.Out); // every other key is still listed
        Assert.Equal(45, r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [InlineData("scan")]
    [InlineData("export")]
    public void Damage_a_read_only_open_reads_past_is_reported_with_its_offset_and_the_exit_code_is_1(string command)
    {
        // v2-flipped-after-close: its newest segment has no hint and a damaged batch entry (batch:b) that the read-only
        // open skips; the listing lacks batch:b and says so.
        var r = Cli.Run(command, Cli.Sample("v2-flipped-after-close"));
        Assert.Equal(1, r.Code);
        Assert.Contains("warning: 0000000003.seg:2043: damaged record", r.Err);
        Assert.Contains("1 finding(s) hiding data", r.Err);
        Assert.DoesNotContain("batch:b", r.Out);
        Assert.Contains("batch:a", r.Out);
    }

    [Fact]
    public void An_export_of_a_damaged_store_to_a_file_keeps_every_readable_key_and_exits_1()
    {
        using var temp = new TempDirectory("export-damaged");
        var file = Path.Combine(temp.Path, "out.jsonl");
        var r = Cli.Run("export", Cli.Sample("v2-flipped-bit"), "--out", file);
        Assert.Equal(1, r.Code);
        Assert.Equal(45, File.ReadAllLines(file).Length);
        Assert.Contains("exported 45 keys", r.Err);
    }
}
