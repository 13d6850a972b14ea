using System.CommandLine;
using System.Text;
using Bitcask.Inspection;

namespace Bitcask.Cli;

internal static partial class Commands
{
    /// <summary>The data-samples/ stores: made with a fixed seed and a frozen clock so every run writes the same bytes.</summary>
    private static Command GenerateSamples(CliContext c)
    {
        var outDir = new Argument<string>("OUTDIR") { Description = "Where to write the sample stores (one subdirectory each, replaced)." };
        var cmd = new Command("generate-samples", Help(
            "Write the data-samples/ stores of the current format version (2) with a fixed seed and a frozen clock: v2-healthy, " +
            "v2-torn-tail, v2-flipped-bit, v2-damaged-hint, v2-flipped-after-close. (The v1-* samples were written by version 1 " +
            "builds and are kept as they are.)", "bitcask generate-samples data-samples"))
        { outDir };
        cmd.Hidden = true;
        cmd.SetAction(r => Guard(c, () =>
        {
            foreach (var line in Samples.Generate(r.GetValue(outDir)!)) c.Out.WriteLine(line);
            return Program.Ok;
        }));
        return cmd;
    }
}

internal static class Samples
{
    public static readonly DateTimeOffset Clock = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public const string Healthy = "v2-healthy", TornTail = "v2-torn-tail", FlippedBit = "v2-flipped-bit", DamagedHint = "v2-damaged-hint",
        FlippedAfterClose = "v2-flipped-after-close";

    public static List<string> Generate(string outDir)
    {
        var root = Path.GetFullPath(outDir);
        Directory.CreateDirectory(root);
        var log = new List<string>();
        var healthy = Fresh(root, Healthy);
        WriteHealthy(healthy);
        log.Add($"{Healthy}: {Describe(healthy)}");

        // Torn tail: the newest segment ends with the first half of a copy of its last record (a crash mid-append).
        // A crash leaves no hint for the segment being appended to, so its hint goes too.
        var torn = Fresh(root, TornTail);
        CopyFiles(healthy, torn);
        var newest = StoreInspector.ReadRecords(torn).Where(x => x.BatchOffset is null).MaxBy(x => (x.SegmentId, x.Offset))!;
        var newestPath = Path.Combine(torn, newest.File);
        var bytes = File.ReadAllBytes(newestPath);
        var half = bytes.AsSpan((int)newest.Offset, (int)newest.Length / 2).ToArray();
        File.Delete(Path.ChangeExtension(newestPath, ".hint"));
        using (var f = new FileStream(newestPath, FileMode.Append)) f.Write(half);
        log.Add($"{TornTail}: appended {half.Length} bytes (half of the record at {newest.File}:{newest.Offset}) at {newest.File}:{bytes.Length}; removed its hint");

        // Flipped bit: one bit of the value of the third put record in the oldest (sealed) segment.
        var flipped = Fresh(root, FlippedBit);
        CopyFiles(healthy, flipped);
        var victim = StoreInspector.ReadRecords(flipped).Where(x => x.SegmentId == 1 && x.BatchOffset is null && x.Kind == RecordType.Put).Skip(2).First();
        var at = victim.Offset + 32 + victim.Key.Length + 1;
        FlipBit(Path.Combine(flipped, victim.File), at, 0x04);
        log.Add($"{FlippedBit}: flipped bit 2 of byte {at} (in the value of the record at {victim.File}:{victim.Offset})");

        // Damaged hint: one bit of the key of the second entry of the first hint file.
        var hinted = Fresh(root, DamagedHint);
        CopyFiles(healthy, hinted);
        var hint = Directory.GetFiles(hinted, "*.hint").Order(StringComparer.Ordinal).First();
        var hintBytes = File.ReadAllBytes(hint);
        // FORMAT.md §4: header 32 bytes; a version 2 entry is 15 bytes, plus 8 when bit 2 (expiry) is set, plus the key.
        static int EntrySize(byte[] b, int at) => 15 + ((b[at] & 4) != 0 ? 8 : 0) + BitConverter.ToUInt16(b, at + 1);
        var second = 32 + EntrySize(hintBytes, 32);
        var hintAt = second + 15 + ((hintBytes[second] & 4) != 0 ? 8 : 0);
        FlipBit(hint, hintAt, 0x01);
        log.Add($"{DamagedHint}: flipped bit 0 of byte {hintAt} of {Path.GetFileName(hint)} (in the key of the entry at offset {second})");

        // Flipped after close: the newest segment was closed cleanly (its closing sync marker proves every byte before it
        // durable), then lost its hint and had one bit of its last batch's second entry flipped: media damage, not a torn tail.
        var closed = Fresh(root, FlippedAfterClose);
        CopyFiles(healthy, closed);
        var entry = StoreInspector.ReadRecords(closed).Where(x => x.BatchOffset is not null).OrderBy(x => x.Offset).Skip(1).First();
        File.Delete(Path.Combine(closed, Path.ChangeExtension(entry.File, ".hint")));
        var entryAt = entry.Offset + 32 + entry.Key.Length;
        FlipBit(Path.Combine(closed, entry.File), entryAt, 0x10);
        log.Add($"{FlippedAfterClose}: removed {Path.ChangeExtension(entry.File, ".hint")}, flipped bit 4 of byte {entryAt} (in the batch entry at {entry.File}:{entry.Offset}, batch at {entry.BatchOffset})");
        return log;
    }

    private static string Fresh(string root, string name)
    {
        var dir = Path.Combine(root, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void CopyFiles(string from, string to)
    {
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    private static void FlipBit(string path, long offset, byte mask)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        var b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ mask));
    }

    private static string Describe(string dir)
    {
        var report = StoreInspector.Verify(dir);
        return Summary(report);
    }

    private static string Summary(VerifyReport r) => Commands.Summary(r);

    /// <summary>Several 4 KiB segments with puts, overwrites, tombstones, far-future TTLs, LZ4 values, a batch, a binary key,
    /// and a hint file for every segment.</summary>
    private static void WriteHealthy(string dir)
    {
        var random = new Random(20250101);
        var options = new BitcaskOptions
        {
            MaxSegmentBytes = 4096, MaxKeyBytes = 64, MaxValueBytes = 1024, CompressionThreshold = 64, CompactionEnabled = false,
            TimeProvider = new FixedTimeProvider(Clock), Durability = Durability.Flushed,
        };
        const string lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ";
        using (var store = BitcaskStore.Open(dir, options))
        {
            for (var i = 0; i < 40; i++)
                store.Put($"user:{i:D3}", $"{{\"id\":{i},\"name\":\"user {i}\",\"bio\":\"{string.Concat(Enumerable.Repeat(lorem, random.Next(0, 4)))}\"}}");
            for (var i = 0; i < 40; i += 4)
                store.Put($"user:{i:D3}", $"{{\"id\":{i},\"name\":\"user {i} (renamed)\",\"bio\":\"{lorem}{lorem}\"}}");
            for (var i = 5; i < 40; i += 7) store.Delete($"user:{i:D3}");
            for (var i = 0; i < 8; i++)
                store.Put(Encoding.UTF8.GetBytes($"session:{i:D2}"), Encoding.UTF8.GetBytes($"token-{random.Next():x8}"), TimeSpan.FromDays(36500 + i));
            store.Write(new WriteBatch().Put("batch:a", "1").Put("batch:b", "2").Delete("user:001"));
            var binaryValue = new byte[24];
            random.NextBytes(binaryValue);
            store.Put(new byte[] { 0xff, 0x00, 0x01, 0xfe }, binaryValue);
            store.Put("empty", "");
        }
        // Hints: the engine writes one when a segment is sealed; make sure every segment has one (same bytes as the engine's).
        StoreInspector.Repair(dir, new InspectOptions { TimeProvider = new FixedTimeProvider(Clock) });
        File.Delete(Path.Combine(dir, "LOCK")); // holds a pid: not reproducible
        var quarantine = Path.Combine(dir, StoreInspector.QuarantineDirectoryName);
        if (Directory.Exists(quarantine)) throw new InvalidOperationException("the healthy sample needed a repair; this is a bug");
    }
}
