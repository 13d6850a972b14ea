using System.CommandLine;
using System.Text;
using System.Text.Json;
using Bitcask.Inspection;

namespace Bitcask.Cli;

internal static partial class Commands
{
    /// <summary>One export line: {"key": K, "value": V[, "expiresAt": ms][, "encoding": "base64"]}.</summary>
    internal static string ExportLine(byte[] key, byte[] value, long expiresAt)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOut.WriterOptions))
        {
            w.WriteStartObject();
            var text = Text.TryUtf8(key, out var k) & Text.TryUtf8(value, out var v);
            if (text)
            {
                w.WriteString("key", k);
                w.WriteString("value", v);
            }
            else
            {
                w.WriteBase64String("key", key);
                w.WriteBase64String("value", value);
            }
            if (expiresAt != 0) w.WriteNumber("expiresAt", expiresAt);
            if (!text) w.WriteString("encoding", "base64");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static Command Export(CliContext c)
    {
        var dir = DirArgument();
        var output = new Option<string?>("--out") { Description = "Write to this file (replaced whole when done) instead of stdout.", HelpName = "FILE" };
        var cmd = new Command("export", Help(
            "Every live key as JSON lines, in key byte order: {\"key\": K, \"value\": V}, plus \"expiresAt\" (Unix ms) when the key " +
            "has a TTL; when the key or value is not UTF-8 both are base64 and the line has \"encoding\": \"base64\". " +
            "Opens the store read-only: a consistent snapshot of each key as of the open. A damaged store is still exported " +
            "(every readable key), with a warning on stderr for what could not be read, and exit code 1.",
            "bitcask export /var/lib/myservice/kv --out backup.jsonl", "bitcask export /var/lib/myservice/kv | gzip > backup.jsonl.gz"))
        { dir, output };
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenReadOnly(r.GetValue(dir)!);
            var hidden = WarnAboutHiddenData(c, store);
            var unreadable = 0;
            var target = r.GetValue(output);
            string? full = null, temp = null;
            if (target is not null)
            {
                full = Path.GetFullPath(target);
                var storeDir = store.Directory.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
                if (full.StartsWith(storeDir, StringComparison.Ordinal) || full == store.Directory)
                    throw new CliError($"refusing to write the export inside the store directory ('{full}'); choose a path outside '{store.Directory}'");
                if (Directory.Exists(full)) throw new CliError($"--out '{full}' is a directory; give a file name");
                temp = full + ".tmp";
            }
            var keys = store.Keys().ToList();
            keys.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
            var written = 0L;
            var writer = temp is null ? c.Out : new StreamWriter(new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None), new UTF8Encoding(false));
            try
            {
                ProgressBar.Run(c, "export", progress =>
                {
                    foreach (var key in keys)
                    {
                        if (TryRead(c, store, key, out var value, out var expiresAt, ref unreadable))
                        {
                            writer.Write(ExportLine(key, value, expiresAt));
                            writer.Write('\n');
                        }
                        progress?.Invoke(++written, keys.Count);
                    }
                    return 0;
                });
                writer.Flush();
            }
            finally
            {
                if (temp is not null) writer.Dispose();
            }
            if (temp is not null)
            {
                File.Move(temp, full!, overwrite: true);
                c.Err.WriteLine($"exported {keys.Count - unreadable} keys to {full}");
            }
            return DamageOutcome(c, "export", hidden, unreadable);
        }));
        return cmd;
    }

    internal readonly record struct ImportEntry(byte[] Key, byte[] Value, long ExpiresAt);

    /// <summary>Parses one export line; throws <see cref="FormatException"/> saying what is wrong.</summary>
    internal static ImportEntry ParseLine(ReadOnlyMemory<byte> line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 4 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException("expected a JSON object");
            string? key = null, value = null, encoding = null;
            long expiresAt = 0;
            var seen = new HashSet<string>();
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name)) throw new FormatException($"property \"{property.Name}\" appears twice");
                switch (property.Name)
                {
                    case "key" when property.Value.ValueKind == JsonValueKind.String: key = property.Value.GetString(); break;
                    case "value" when property.Value.ValueKind == JsonValueKind.String: value = property.Value.GetString(); break;
                    case "encoding" when property.Value.ValueKind == JsonValueKind.String: encoding = property.Value.GetString(); break;
                    case "expiresAt" when property.Value.ValueKind == JsonValueKind.Number:
                        if (!property.Value.TryGetInt64(out expiresAt) || expiresAt <= 0 || expiresAt > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
                            throw new FormatException("\"expiresAt\" must be a whole number of Unix milliseconds between 1 and 253402300799999");
                        break;
                    case "key" or "value" or "encoding": throw new FormatException($"\"{property.Name}\" must be a string");
                    case "expiresAt": throw new FormatException("\"expiresAt\" must be a number");
                    default: throw new FormatException($"unknown property \"{property.Name}\"");
                }
            }
            if (key is null) throw new FormatException("\"key\" is missing");
            if (value is null) throw new FormatException("\"value\" is missing");
            if (encoding is not null and not "base64") throw new FormatException($"\"encoding\" must be \"base64\" (got \"{encoding}\")");
            if (encoding is null) return new ImportEntry(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), expiresAt);
            try
            {
                return new ImportEntry(Convert.FromBase64String(key), Convert.FromBase64String(value), expiresAt);
            }
            catch (FormatException)
            {
                throw new FormatException("\"key\" or \"value\" is not valid base64 although \"encoding\" is \"base64\"");
            }
        }
        catch (JsonException e)
        {
            throw new FormatException("not valid JSON: " + e.Message.Split(" LineNumber", 2)[0].Split(" Path:", 2)[0]);
        }
    }

    private static Command Import(CliContext c)
    {
        var dir = DirArgument("The store directory (created when missing or empty).");
        var file = new Argument<string>("FILE") { Description = "JSON lines as written by export; - reads stdin." };
        var cmd = new Command("import", Help(
            "Write every line of an export file into the store (later lines win for the same key; keys whose expiresAt has " +
            "passed are skipped). The whole file is validated first: a malformed line is reported with its line number and " +
            "nothing is imported (exit 1).",
            "bitcask import /var/lib/newservice/kv backup.jsonl"))
        { dir, file };
        cmd.SetAction(r => Guard(c, () =>
        {
            var source = r.GetValue(file)!;
            byte[] data;
            string name;
            if (source == "-")
            {
                data = ReadStdin(c, int.MaxValue - 64);
                name = "stdin";
            }
            else
            {
                var full = Path.GetFullPath(source);
                if (Directory.Exists(full)) throw new CliError($"'{full}' is a directory, not an export file");
                if (!File.Exists(full)) throw new CliError($"no export file at '{full}'");
                data = File.ReadAllBytes(full);
                name = source;
            }
            // Pass 1: validate every line before anything is written.
            var limits = WriteOptions;
            var lines = 0L;
            var count = 0L;
            foreach (var (number, line) in Lines(data))
            {
                lines = number;
                if (line.IsEmpty) continue;
                ImportEntry entry;
                try
                {
                    entry = ParseLine(line);
                }
                catch (FormatException e)
                {
                    c.Err.WriteLine($"bitcask: {name}:{number}: {e.Message}; nothing was imported");
                    return Program.Problems;
                }
                if (entry.Key.Length > limits.MaxKeyBytes || entry.Value.Length > limits.MaxValueBytes)
                {
                    c.Err.WriteLine($"bitcask: {name}:{number}: key of {entry.Key.Length} bytes or value of {entry.Value.Length} bytes exceeds the limits ({limits.MaxKeyBytes} / {limits.MaxValueBytes}); nothing was imported");
                    return Program.Problems;
                }
                count++;
            }
            // Pass 2: write. A frozen clock makes every TTL land on exactly the exported expiresAt.
            var now = TimeProvider.System.GetUtcNow();
            var nowMs = now.ToUnixTimeMilliseconds();
            long imported = 0, expired = 0;
            using var store = OpenForWriting(r.GetValue(dir)!, mayCreate: true, limits with { TimeProvider = new FixedTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(nowMs)) });
            ProgressBar.Run(c, "import", progress =>
            {
                var batch = new WriteBatch();
                foreach (var (number, line) in Lines(data))
                {
                    if (line.IsEmpty) continue;
                    var e = ParseLine(line);
                    if (e.ExpiresAt != 0 && e.ExpiresAt <= nowMs) { expired++; continue; }
                    if (e.ExpiresAt == 0) batch.Put(e.Key, e.Value);
                    else batch.Put(e.Key, e.Value, TimeSpan.FromMilliseconds(e.ExpiresAt - nowMs));
                    imported++;
                    if (batch.PayloadBytes >= (1 << 20) || batch.Count >= 4096)
                    {
                        store.Write(batch);
                        batch = new WriteBatch();
                    }
                    progress?.Invoke(imported + expired, count);
                }
                if (batch.Count > 0) store.Write(batch);
                return 0;
            });
            store.Sync();
            c.Err.WriteLine($"imported {imported} keys from {name}" + (expired > 0 ? $"; skipped {expired} already expired" : ""));
            return Program.Ok;
        }));
        return cmd;
    }

    /// <summary>Lines of a UTF-8 text (1-based numbers), without the line break; a trailing CR is dropped.</summary>
    private static IEnumerable<(long Number, ReadOnlyMemory<byte> Line)> Lines(byte[] data)
    {
        var start = 0;
        long number = 0;
        while (start < data.Length)
        {
            var end = Array.IndexOf(data, (byte)'\n', start);
            if (end < 0) end = data.Length;
            var stop = end > start && data[end - 1] == '\r' ? end - 1 : end;
            number++;
            var line = new ReadOnlyMemory<byte>(data, start, stop - start);
            yield return (number, IsBlank(line.Span) ? ReadOnlyMemory<byte>.Empty : line);
            start = end + 1;
        }
    }

    private static bool IsBlank(ReadOnlySpan<byte> s)
    {
        foreach (var b in s) if (b is not ((byte)' ' or (byte)'\t')) return false;
        return true;
    }
}

/// <summary>A clock that stands still (import, sample generation).</summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
