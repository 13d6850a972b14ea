using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bitcask.Inspection;
using Spectre.Console;

namespace Bitcask.Cli;

internal static partial class Commands
{
    /// <summary>Limits wide enough for any store: read-only commands must never call a valid big record damaged.</summary>
    public static readonly BitcaskOptions ReadOnlyOptions = new()
    {
        ReadOnly = true,
        MaxKeyBytes = ushort.MaxValue,
        MaxValueBytes = int.MaxValue - ushort.MaxValue - 1024,
        MaxSegmentBytes = int.MaxValue,
        CompressionThreshold = 0,
    };

    /// <summary>Options for commands that write: default segment size and compression, wide key and value limits.</summary>
    public static readonly BitcaskOptions WriteOptions = new()
    {
        MaxKeyBytes = ushort.MaxValue,
        MaxValueBytes = 128 << 20,
        CompactionEnabled = false,
    };

    private static Argument<string> DirArgument(string what = "The store directory.") => new("DIR") { Description = what };

    private static string Help(string summary, params string[] examples) =>
        summary + Environment.NewLine + Environment.NewLine + "Example" + (examples.Length > 1 ? "s" : "") + ":" +
        string.Concat(examples.Select(e => Environment.NewLine + "  " + e));

    public static Command Build(CliContext c)
    {
        var root = new Command("bitcask", Help("bitcask: inspect, verify, repair and use a Bitcask store directory. " +
            "Exit codes: 0 ok/healthy, 1 problems found (or key not found), 2 usage error or the directory cannot be used.",
            "bitcask verify /var/lib/myservice/kv", "bitcask bench"))
        {
            new System.CommandLine.Help.HelpOption { Recursive = true },
            new VersionOption(),
        };
        root.Add(Verify(c));
        root.Add(Dump(c));
        root.Add(Stats(c));
        root.Add(Get(c));
        root.Add(Put(c));
        root.Add(Delete(c));
        root.Add(Scan(c));
        root.Add(Export(c));
        root.Add(Import(c));
        root.Add(Compact(c));
        root.Add(Repair(c));
        root.Add(Backup(c));
        root.Add(Bench(c));
        root.Add(Serve(c));
        root.Add(Cluster(c));
        root.Add(GenerateSamples(c));
        return root;
    }

    /// <summary>Runs a command body; every failure becomes one line on stderr and an exit code, never a stack trace.</summary>
    private static int Guard(CliContext c, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (CliError e)
        {
            c.Err.WriteLine($"bitcask: {e.Message}");
            return e.ExitCode;
        }
        catch (CorruptionException e)
        {
            c.Err.WriteLine($"bitcask: the store is damaged: {Describe(e)}");
            return Program.Problems;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or InvalidOperationException)
        {
            c.Err.WriteLine($"bitcask: {Describe(e)}");
            return Program.Usage;
        }
    }

    public static string Describe(Exception e) => e.Message.ReplaceLineEndings(" ");

    /// <summary>A failure with its own message and exit code.</summary>
    internal sealed class CliError(string message, int exitCode = Program.Usage) : Exception(message)
    {
        public int ExitCode { get; } = exitCode;
    }

    private static BitcaskStore OpenReadOnly(string dir)
    {
        var full = StoreInspector.CheckStoreDirectory(dir);
        return BitcaskStore.Open(full, ReadOnlyOptions);
    }

    /// <summary>For commands that list what a read-only open sees (scan, export): prints a warning for every open finding
    /// that hides written data (a read-only open reads past damage), and returns how many there were.</summary>
    internal static int WarnAboutHiddenData(CliContext c, BitcaskStore store)
    {
        var hidden = store.GetStats().RecoveryFindings.Where(f => f.HidesData).ToList();
        foreach (var f in hidden) c.Err.WriteLine($"warning: {Path.GetFileName(f.Path)}:{f.Offset}: {f.Problem}: its keys are missing or older here");
        return hidden.Count;
    }

    /// <summary>Reads one key for scan and export; a record that fails its CRC is reported on stderr and skipped.</summary>
    internal static bool TryRead(CliContext c, BitcaskStore store, byte[] key, out byte[] value, out long expiresAt, ref int unreadable)
    {
        try
        {
            return Entries.TryGet(store, key, out value, out expiresAt);
        }
        catch (CorruptionException e)
        {
            c.Err.WriteLine($"warning: key {Text.Show(key, 0)} skipped: {e.Message}");
            unreadable++;
            value = [];
            expiresAt = 0;
            return false;
        }
    }

    /// <summary>The exit code and last stderr line of a listing that skipped damaged data.</summary>
    internal static int DamageOutcome(CliContext c, string command, int hidden, int unreadable)
    {
        if (hidden == 0 && unreadable == 0) return Program.Ok;
        c.Err.WriteLine($"{command}: the store is damaged ({hidden} finding(s) hiding data, {unreadable} unreadable key(s)): the output lacks those keys; " +
            "run 'bitcask verify' for details and 'bitcask repair' to quarantine the damage");
        return Program.Problems;
    }

    /// <summary>Writers accept an existing store, or a missing or empty directory (a new store is created there).</summary>
    private static BitcaskStore OpenForWriting(string dir, bool mayCreate, BitcaskOptions? options = null)
    {
        var full = Path.GetFullPath(dir);
        var creatable = mayCreate && (!Directory.Exists(full) && !File.Exists(full) || Directory.Exists(full) && !Directory.EnumerateFileSystemEntries(full).Any());
        if (!creatable) StoreInspector.CheckStoreDirectory(full);
        return BitcaskStore.Open(full, options ?? WriteOptions);
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    // ------------------------------------------------------------------ verify

    private static Command Verify(CliContext c)
    {
        var dir = DirArgument();
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var cmd = new Command("verify", Help(
            "Read every byte of every segment and hint file; check headers, every CRC and record length, and that each hint " +
            "file agrees with its segment. Prints one line per problem (file:offset: kind: what), then a summary. " +
            "Never changes a byte; works beside a running writer. Exit 0 healthy, 1 problems found, 2 unusable directory.",
            "bitcask verify /var/lib/myservice/kv", "bitcask verify --json data-samples/v1-torn-tail"))
        { dir, json };
        cmd.SetAction(r => Guard(c, () =>
        {
            var path = r.GetValue(dir)!;
            StoreInspector.CheckStoreDirectory(path);
            var report = ProgressBar.Run(c, "verify", p => StoreInspector.Verify(path, new InspectOptions { Progress = p }));
            if (r.GetValue(json))
                c.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    report.Directory, healthy = report.Healthy, report.Segments, report.HintFiles, report.Records, report.Tombstones,
                    report.Batches, liveKeys = report.LiveKeys, report.Bytes,
                    problems = report.Problems.Select(p => new { file = p.File, offset = p.Offset, kind = p.Kind.DisplayName(), message = p.Message, length = p.Length }),
                    notes = report.Notes,
                }, JsonOut.Options));
            else
            {
                foreach (var p in report.Problems) c.Out.WriteLine(p.ToString());
                foreach (var n in report.Notes) c.Out.WriteLine("note: " + n);
                c.Out.WriteLine(Summary(report));
            }
            return report.Healthy ? Program.Ok : Program.Problems;
        }));
        return cmd;
    }

    internal static string Summary(VerifyReport r) =>
        $"{r.Segments} segments, {r.HintFiles} hint files, {r.Records} records ({r.Tombstones} tombstones, {r.Batches} batches), " +
        $"{r.LiveKeys} live keys, {r.Bytes} bytes read: " + (r.Healthy ? "healthy" : $"{r.Problems.Count} problem{(r.Problems.Count == 1 ? "" : "s")}");

    // ------------------------------------------------------------------ dump

    private static Command Dump(CliContext c)
    {
        var dir = DirArgument();
        var keysOnly = new Option<bool>("--keys-only") { Description = "Leave values out." };
        var segment = new Option<uint?>("--segment") { Description = "Only the segment with this id (the number in its file name).", HelpName = "ID" };
        var json = new Option<bool>("--json") { Description = "One JSON object per line (keys and values in full; base64 when not UTF-8)." };
        var live = new Option<bool>("--live") { Description = "Only the records a fresh open's keydir points at (newest unexpired put of each key)." };
        var full = new Option<bool>("--full") { Description = "Do not shorten long keys and values." };
        var cmd = new Command("dump", Help(
            "Every record in file order: segment:offset, kind, sequence, expiry, key and value (printable text as text, other bytes " +
            "as hex; long values shortened unless --full). Damaged ranges are listed where they are. Read-only. Exit 1 when damage was listed.",
            "bitcask dump /var/lib/myservice/kv --segment 3 --keys-only", "bitcask dump /var/lib/myservice/kv --live --json"))
        { dir, keysOnly, segment, json, live, full };
        cmd.SetAction(r => Guard(c, () =>
        {
            var path = r.GetValue(dir)!;
            var withValues = !r.GetValue(keysOnly);
            var asJson = r.GetValue(json);
            var max = r.GetValue(full) ? 0 : 80;
            var damaged = 0;
            var records = StoreInspector.ReadRecords(path, r.GetValue(segment), r.GetValue(live), withValues);
            ProgressBar.Run(c, "dump", _ =>
            {
                foreach (var rec in records)
                {
                    if (rec.Kind == RecordType.Damaged || rec.Problem is not null) damaged++;
                    c.Out.WriteLine(asJson ? DumpJson(rec, withValues) : DumpText(rec, withValues, max));
                }
                return 0;
            });
            return damaged == 0 ? Program.Ok : Program.Problems;
        }));
        return cmd;
    }

    private static string DumpText(RecordInfo r, bool withValues, int max)
    {
        if (r.Kind == RecordType.Damaged) return $"{r.File}:{r.Offset} damaged {r.Length} bytes: {r.Problem}";
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{r.File}:{r.Offset} {(r.Kind == RecordType.Put ? "put" : "tombstone")} seq={r.Sequence}");
        if (r.ExpiresAt != 0) sb.Append(" expires=").Append(Text.Expiry(r.ExpiresAt));
        if (r.BatchOffset is { } b) sb.Append(CultureInfo.InvariantCulture, $" batch@{b}");
        if (r.Compressed) sb.Append(" lz4");
        if (r.Live) sb.Append(" live");
        sb.Append(" key=").Append(Text.Show(r.Key, max));
        if (withValues && r.Kind == RecordType.Put) sb.Append(" value=").Append(r.Problem ?? Text.Show(r.Value, max));
        return sb.ToString();
    }

    private static string DumpJson(RecordInfo r, bool withValues)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOut.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("segment", r.SegmentId);
            w.WriteString("file", r.File);
            w.WriteNumber("offset", r.Offset);
            w.WriteNumber("length", r.Length);
            w.WriteString("kind", r.Kind switch { RecordType.Put => "put", RecordType.Tombstone => "tombstone", _ => "damaged" });
            if (r.Kind == RecordType.Damaged)
            {
                w.WriteString("problem", r.Problem);
            }
            else
            {
                w.WriteNumber("sequence", r.Sequence);
                w.WriteNumber("expiresAt", r.ExpiresAt);
                var value = withValues && r.Kind == RecordType.Put ? r.Value : null;
                WriteKeyValue(w, r.Key, value);
                w.WriteNumber("valueLength", r.ValueLength);
                w.WriteBoolean("compressed", r.Compressed);
                if (r.BatchOffset is { } b) w.WriteNumber("batchOffset", b);
                w.WriteBoolean("live", r.Live);
                if (r.Problem is not null) w.WriteString("problem", r.Problem);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>"key" and "value" as strings; both base64 with "encoding": "base64" when either is not valid UTF-8.</summary>
    internal static void WriteKeyValue(Utf8JsonWriter w, byte[] key, byte[]? value)
    {
        var textKey = Text.TryUtf8(key, out var k);
        string v = "";
        var textValue = value is null || Text.TryUtf8(value, out v);
        if (textKey && textValue)
        {
            w.WriteString("key", k);
            if (value is not null) w.WriteString("value", v);
        }
        else
        {
            w.WriteBase64String("key", key);
            if (value is not null) w.WriteBase64String("value", value);
            w.WriteString("encoding", "base64");
        }
    }

    // ------------------------------------------------------------------ stats

    private static Command Stats(CliContext c)
    {
        var dir = DirArgument();
        var json = new Option<bool>("--json") { Description = "Print the statistics as one JSON object." };
        var cmd = new Command("stats", Help(
            "Keys, live and dead bytes, fragmentation per segment and in total, hint-file coverage, estimated keydir memory " +
            "and what recovery found. Opens the store read-only.",
            "bitcask stats /var/lib/myservice/kv", "bitcask stats /var/lib/myservice/kv --json"))
        { dir, json };
        cmd.SetAction(r => Guard(c, () =>
        {
            var path = r.GetValue(dir)!;
            using var store = OpenReadOnly(path);
            var s = store.GetStats();
            var usable = s.Segments.Count(x => x.HasHintFile);
            if (r.GetValue(json))
            {
                c.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    directory = store.Directory, keys = s.LiveKeys, s.KeydirEntries, s.TotalBytes, s.LiveBytes, s.DeadBytes, s.Fragmentation,
                    estimatedKeydirBytes = s.KeydirBytes, hintCoverage = new { segments = s.Segments.Count, usableHints = usable },
                    segments = s.Segments.Select(x => new
                    {
                        x.Id, x.FileName, x.TotalBytes, x.LiveBytes, x.DeadBytes, x.Fragmentation, x.IsCompactionOutput,
                        hint = x.HasHintFile ? "usable" : "none",
                    }),
                    recoveryFindings = s.RecoveryFindings.Select(f => new { file = Path.GetFileName(f.Path), f.Offset, f.Problem, f.Action }),
                    openMilliseconds = s.OpenDuration.TotalMilliseconds,
                }, JsonOut.Options));
                return Program.Ok;
            }
            var console = TableConsole(c);
            var table = new Table().Border(TableBorder.Simple).Title("segments");
            foreach (var col in new[] { "segment", "kind", "bytes", "live", "dead", "fragmentation", "hint" }) table.AddColumn(col);
            foreach (var x in s.Segments)
                table.AddRow(x.FileName, x.IsCompactionOutput ? "compacted" : "write", Text.Bytes(x.TotalBytes), Text.Bytes(x.LiveBytes),
                    Text.Bytes(x.DeadBytes), $"{x.Fragmentation:P1}", x.HasHintFile ? "usable" : "none");
            console.Write(table);
            var totals = new Table().Border(TableBorder.Simple).HideHeaders().AddColumn("what").AddColumn("value");
            totals.AddRow("directory", Markup.Escape(store.Directory));
            totals.AddRow("live keys", s.LiveKeys.ToString("N0", CultureInfo.InvariantCulture));
            totals.AddRow("keydir entries (incl. expired)", s.KeydirEntries.ToString("N0", CultureInfo.InvariantCulture));
            totals.AddRow("segments", s.Segments.Count.ToString(CultureInfo.InvariantCulture));
            totals.AddRow("total bytes", Text.Bytes(s.TotalBytes));
            totals.AddRow("live / dead bytes", $"{Text.Bytes(s.LiveBytes)} / {Text.Bytes(s.DeadBytes)}");
            totals.AddRow("fragmentation", $"{s.Fragmentation:P1}");
            totals.AddRow("hint coverage", $"{usable} of {s.Segments.Count} segments have a usable hint file");
            totals.AddRow("estimated keydir memory", Text.Bytes(s.KeydirBytes));
            totals.AddRow("open took", $"{s.OpenDuration.TotalMilliseconds:F1} ms");
            totals.AddRow("recovery findings", s.RecoveryFindings.Count == 0 ? "none" : s.RecoveryFindings.Count.ToString(CultureInfo.InvariantCulture));
            console.Write(totals);
            foreach (var f in s.RecoveryFindings) c.Out.WriteLine($"finding: {Path.GetFileName(f.Path)}:{f.Offset}: {f.Problem} ({f.Action})");
            return Program.Ok;
        }));
        return cmd;
    }

    internal static IAnsiConsole TableConsole(CliContext c)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(c.Out),
            Ansi = c.StdoutIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = c.StdoutIsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!c.StdoutIsTerminal) console.Profile.Width = 140;
        return console;
    }

    // ------------------------------------------------------------------ get / put / delete / scan

    private static Command Get(CliContext c)
    {
        var dir = DirArgument();
        var key = new Argument<string>("KEY") { Description = "The key (UTF-8)." };
        var raw = new Option<bool>("--raw") { Description = "Write the value's exact bytes, without a newline." };
        var b64 = new Option<bool>("--base64") { Description = "Print the value as base64." };
        var cmd = new Command("get", Help(
            "Print the value of KEY followed by a newline (base64, with a note on stderr, when it is not UTF-8). " +
            "Exit 1 when the key is absent or expired. Opens the store read-only.",
            "bitcask get /var/lib/myservice/kv config:feature-x", "bitcask get /var/lib/myservice/kv blob:7 --raw > blob.bin"))
        { dir, key, raw, b64 };
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenReadOnly(r.GetValue(dir)!);
            var k = Utf8(r.GetValue(key)!);
            if (k.Length > store.Options.MaxKeyBytes) throw new CliError($"the key is {k.Length} bytes; the limit is {store.Options.MaxKeyBytes}");
            var value = store.Get(k);
            if (value is null)
            {
                c.Err.WriteLine($"bitcask: key not found: {r.GetValue(key)}");
                return Program.Problems;
            }
            if (r.GetValue(raw) && c.OpenRawStdout is { } open)
            {
                c.Out.Flush();
                using var s = open();
                s.Write(value);
                return Program.Ok;
            }
            if (r.GetValue(b64)) c.Out.WriteLine(Convert.ToBase64String(value));
            else if (Text.TryUtf8(value, out var text)) { if (r.GetValue(raw)) c.Out.Write(text); else c.Out.WriteLine(text); }
            else
            {
                c.Err.WriteLine("bitcask: the value is not UTF-8 text; printed as base64 (use --raw for the bytes)");
                c.Out.WriteLine(Convert.ToBase64String(value));
            }
            return Program.Ok;
        }));
        return cmd;
    }

    private static Command Put(CliContext c)
    {
        var dir = DirArgument("The store directory (created when missing or empty).");
        var key = new Argument<string>("KEY") { Description = "The key (UTF-8)." };
        var value = new Argument<string>("VALUE") { Description = "The value (UTF-8), or - to read the value's bytes from stdin." };
        var ttl = new Option<string?>("--ttl") { Description = "Expire the key after this long: 500ms, 30s, 5m, 2h, 7d or hh:mm:ss.", HelpName = "DURATION" };
        var cmd = new Command("put", Help("Store VALUE under KEY (acknowledged when the OS has it; synced at close).",
            "bitcask put /var/lib/myservice/kv config:feature-x on", "bitcask put /var/lib/myservice/kv session:42 token --ttl 30m",
            "cat blob.bin | bitcask put /var/lib/myservice/kv blob:7 -"))
        { dir, key, value, ttl };
        cmd.SetAction(r => Guard(c, () =>
        {
            TimeSpan? timeToLive = null;
            if (r.GetValue(ttl) is { } t)
            {
                if (!Text.TryParseDuration(t, out var parsed) || parsed <= TimeSpan.Zero)
                    throw new CliError($"--ttl '{t}' is not a positive duration (examples: 500ms, 30s, 5m, 2h, 7d, 01:30:00)");
                timeToLive = parsed;
            }
            var k = Utf8(r.GetValue(key)!);
            var v = r.GetValue(value) == "-" ? ReadStdin(c, WriteOptions.MaxValueBytes) : Utf8(r.GetValue(value)!);
            using var store = OpenForWriting(r.GetValue(dir)!, mayCreate: true);
            if (timeToLive is { } span) store.Put(k, v, span);
            else store.Put(k, v);
            return Program.Ok;
        }));
        return cmd;
    }

    private static byte[] ReadStdin(CliContext c, int limit)
    {
        using var input = c.OpenStdin();
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = input.Read(chunk)) > 0)
        {
            if (buffer.Length + n > limit) throw new CliError($"the value on stdin is longer than the limit of {limit} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private static Command Delete(CliContext c)
    {
        var dir = DirArgument();
        var key = new Argument<string>("KEY") { Description = "The key (UTF-8)." };
        var cmd = new Command("delete", Help("Remove KEY. Exit 1 when it was not there.", "bitcask delete /var/lib/myservice/kv session:42")) { dir, key };
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenForWriting(r.GetValue(dir)!, mayCreate: false);
            if (store.Delete(Utf8(r.GetValue(key)!))) return Program.Ok;
            c.Err.WriteLine($"bitcask: key not found: {r.GetValue(key)}");
            return Program.Problems;
        }));
        return cmd;
    }

    private static Command Scan(CliContext c)
    {
        var dir = DirArgument();
        var prefix = new Option<string?>("--prefix") { Description = "Only keys that start with this (UTF-8).", HelpName = "P" };
        var limit = new Option<int?>("--limit") { Description = "At most this many keys.", HelpName = "N" };
        var keysOnly = new Option<bool>("--keys-only") { Description = "Print keys only." };
        var json = new Option<bool>("--json") { Description = "Print export-format JSON lines." };
        var cmd = new Command("scan", Help(
            "Live keys in byte order with their values, one per line: key TAB value, each as a JSON string when it is " +
            "printable UTF-8, else as 0x-hex. Opens the store read-only. A damaged store still lists every readable key, " +
            "warns on stderr about what it could not read, and exits 1.",
            "bitcask scan /var/lib/myservice/kv --prefix session: --limit 10"))
        { dir, prefix, limit, keysOnly, json };
        limit.Validators.Add(v => { if (v.GetValueOrDefault<int?>() is < 0) v.AddError("--limit must be 0 or more."); });
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenReadOnly(r.GetValue(dir)!);
            var hidden = WarnAboutHiddenData(c, store);
            var unreadable = 0;
            var p = r.GetValue(prefix) is { } s ? Utf8(s) : [];
            var keys = store.Keys(p).ToList();
            keys.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
            var max = r.GetValue(limit) ?? int.MaxValue;
            foreach (var key in keys.Take(max))
            {
                if (r.GetValue(keysOnly)) { c.Out.WriteLine(Text.Show(key, 0)); continue; }
                if (!TryRead(c, store, key, out var value, out var expiresAt, ref unreadable)) continue;
                c.Out.WriteLine(r.GetValue(json) ? ExportLine(key, value, expiresAt) : $"{Text.Show(key, 0)}\t{Text.Show(value, 0)}");
            }
            return DamageOutcome(c, "scan", hidden, unreadable);
        }));
        return cmd;
    }
}
