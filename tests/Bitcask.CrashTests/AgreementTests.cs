using Bitcask.CrashTests.Infrastructure;

namespace Bitcask.CrashTests;

/// <summary>
/// <c>bitcask verify</c> and a read-write open agree (they consume one analysis): on every committed data sample here, and
/// on every crash image of the scripted campaigns in
/// <see cref="CrashPointTests.Bitcask_verify_agrees_with_recovery_on_every_crash_image_and_finds_the_recovered_store_healthy"/>.
/// </summary>
public class AgreementTests
{
    private static string Samples()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "data-samples"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir, "data-samples");
    }

    public static TheoryData<string> SampleNames()
    {
        var data = new TheoryData<string>();
        foreach (var d in Directory.GetDirectories(Samples()).Select(Path.GetFileName).Order(StringComparer.Ordinal)) data.Add(d!);
        return data;
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Verify_and_a_read_write_open_agree_on_every_data_sample(string sample)
    {
        Assert.Null(Agreement.Check(Path.Combine(Samples(), sample), new BitcaskOptions()));
    }
}
