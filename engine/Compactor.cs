using System.Buffers;
using System.Diagnostics;
using Bitcask.Format;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>
/// Merges sealed segments into new ones holding only what is still needed, in the crash-safe order of FORMAT.md §6:
/// write outputs and their hints under temporary names and fsync them; rename them all into place and fsync the
/// directory (the commit point: from here the next open treats the inputs as replaced); point each moved key at its new
/// location only where the keydir still points at the old one; then delete the inputs and fsync the directory.
/// <para>Thread-safety: <see cref="Run"/> must not run concurrently with itself (the store serializes maintenance).
/// Readers and writers keep running during a compaction; readers holding an input segment keep its mapping until
/// they release it.</para>
/// </summary>
internal sealed class Compactor(IStorageFileSystem fs, string directory, BitcaskOptions options, KeyDir keyDir, SegmentSet segments,
    SegmentWriter writer, HintWriter hints, ILogger logger)
{
    private readonly RecordLimits _limits = StoreRecovery.LimitsFor(options);

    /// <summary>Test seam: called with the name of each step as it is reached ("written", "renamed", "switched", "deleted").</summary>
    internal Action<string>? StepHook { get; set; }

    public CompactionResult Run(IReadOnlyList<Segment> candidates, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var inputs = new List<Segment>();
        var applied = writer.AppliedSequence;
        foreach (var s in candidates.OrderBy(s => s.Id))
            if (s.MaxSequence <= applied && s.TryAcquire()) inputs.Add(s); // never a segment whose newest records are not in the keydir yet
        var outputs = new List<Output>();
        var committed = false;
        try
        {
            if (inputs.Count == 0) return new CompactionResult { Duration = clock.Elapsed };
            var inputIds = inputs.Select(s => s.Id).ToHashSet();
            // A tombstone (or an expired put) can be dropped only if no segment outside the merge can hold an older record of its key.
            var outsideMin = segments.Snapshot().Where(s => !inputIds.Contains(s.Id) && s.MaxSequence != 0)
                .Select(s => s.MinSequence).DefaultIfEmpty(ulong.MaxValue).Min();
            var superseded = NormalizeRanges(inputs.SelectMany(s => s.Header.Superseded.Append((s.Id, s.Id))));
            var baseSequence = inputs.Max(s => Math.Max(s.MaxSequence, s.Header.BaseSequence));
            var now = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            var counts = new Counts();
            var relocations = new List<Relocation>();
            var removals = new List<(int Input, KeyLocation From)>();
            var throttle = new Throttle(options.CompactionBytesPerSecond);
            byte[]? scratch = null;
            var tombstone = new byte[RecordCodec.HeaderSize + options.MaxKeyBytes];

            for (var i = 0; i < inputs.Count; i++)
            {
                var input = inputs[i];
                var data = input.Read(0, (int)input.Length, ref scratch);
                var scanner = new SegmentScanner(data, input.Header.Size, _limits);
                while (scanner.Next(out var offset, out var record))
                {
                    ct.ThrowIfCancellationRequested();
                    var entries = new RecordEntries(record, offset);
                    while (entries.Next(out var entryOffset, out var entry))
                    {
                        var key = RecordCodec.Key(entry);
                        var sequence = RecordCodec.ReadSequence(entry);
                        var from = new KeyLocation(input.Id, (uint)entryOffset, (uint)entry.Length);
                        if (RecordCodec.ReadKind(entry) == RecordKind.Put)
                        {
                            if (!keyDir.TryGet(key, out var current, out _) || current.SegmentId != from.SegmentId || current.Offset != from.Offset)
                            {
                                counts.Dropped++;
                                continue;
                            }
                            var expiresAt = RecordCodec.ReadExpiresAt(entry);
                            if (expiresAt != 0 && expiresAt <= now)
                            {
                                counts.Expired++;
                                removals.Add((i, from));
                                if (outsideMin < sequence)
                                {
                                    // Dropping it could let an older value outside the merge win: keep it as a tombstone instead.
                                    var length = RecordCodec.Encode(tombstone, RecordKind.Tombstone, key, default, 0, 0);
                                    RecordCodec.Seal(tombstone.AsSpan(0, length), sequence);
                                    Append(outputs, tombstone.AsSpan(0, length), superseded, baseSequence);
                                    counts.TombstonesKept++;
                                }
                                continue;
                            }
                            var to = Append(outputs, entry, superseded, baseSequence);
                            relocations.Add(new Relocation(i, from, to));
                            counts.Kept++;
                        }
                        else if (outsideMin < sequence)
                        {
                            Append(outputs, entry, superseded, baseSequence);
                            counts.TombstonesKept++;
                        }
                        else counts.Dropped++;
                        throttle.Wait(entry.Length, ct);
                    }
                }
                if (scanner.Error is not null)
                    throw new CorruptionException(input.Path, scanner.Position, scanner.Error, "Compaction stopped and changed nothing; run 'bitcask verify'.");
            }
            // Always at least one output, even an empty one: it carries the superseded ranges that make deleting the
            // inputs safe in any order.
            if (outputs.Count == 0) StartOutput(outputs, superseded, baseSequence);
            FinishOutputs(outputs);
            StepHook?.Invoke("written");

            foreach (var o in outputs) fs.Rename(o.TempPath, o.FinalPath);
            fs.SyncDirectory(directory); // commit point: every output of the run is durable under its final name
            committed = true;
            // Hints take their names only after their segments' names are durable: a hint without its segment then always
            // means a lost segment (or one a later compaction replaced), never an output that did not land.
            foreach (var o in outputs) fs.Rename(o.HintTempPath, o.HintFinalPath);
            fs.SyncDirectory(directory); // the outputs' hint names are durable
            StepHook?.Invoke("renamed");

            var opened = outputs.Select(o => o.OpenSealed(fs)).ToList();
            segments.Replace([], opened);
            foreach (var r in relocations)
            {
                var key = KeyAt(inputs[r.Input], r.From, ref scratch);
                if (keyDir.TryRelocate(key, r.From, r.To)) segments.Find(r.To.SegmentId)?.AddLive(r.To.Length);
            }
            foreach (var (input, from) in removals)
                keyDir.TryRemoveAt(KeyAt(inputs[input], from, ref scratch), from);
            segments.Replace(inputs, []);
            StepHook?.Invoke("switched");

            foreach (var s in inputs)
            {
                fs.Delete(s.Path);
                var hint = Path.Combine(directory, StoreFiles.HintName(s.Id));
                if (fs.FileExists(hint)) fs.Delete(hint);
            }
            fs.SyncDirectory(directory); // the inputs' removal is durable before the next compaction can replace these outputs
            StepHook?.Invoke("deleted");

            var result = new CompactionResult
            {
                SegmentsIn = inputs.Count,
                SegmentsOut = opened.Count,
                BytesBefore = inputs.Sum(s => s.Length),
                BytesAfter = opened.Sum(s => s.Length),
                RecordsKept = counts.Kept,
                RecordsDropped = counts.Dropped,
                RecordsExpired = counts.Expired,
                TombstonesKept = counts.TombstonesKept,
                Duration = clock.Elapsed,
            };
            Log.Compacted(logger, result.SegmentsIn, result.BytesBefore, result.SegmentsOut, result.BytesAfter,
                result.RecordsKept, result.RecordsDropped, result.RecordsExpired, (long)result.Duration.TotalMilliseconds);
            return result;
        }
        catch (Exception e) when (!committed)
        {
            foreach (var o in outputs) o.Abandon(fs);
            if (e is OperationCanceledException) return new CompactionResult { Cancelled = true, SegmentsIn = inputs.Count, Duration = clock.Elapsed };
            Log.CompactionFailed(logger, e, e.Message);
            throw;
        }
        finally
        {
            foreach (var o in outputs) o.CloseFile();
            foreach (var s in inputs) s.Release();
        }
    }

    private static ReadOnlySpan<byte> KeyAt(Segment input, KeyLocation location, ref byte[]? scratch) =>
        RecordCodec.Key(input.Read(location.Offset, (int)location.Length, ref scratch));

    private KeyLocation Append(List<Output> outputs, ReadOnlySpan<byte> record, IReadOnlyList<(uint, uint)> superseded, ulong baseSequence)
    {
        var output = outputs.Count == 0 || (outputs[^1].HasRecords && outputs[^1].Length + record.Length > options.MaxSegmentBytes)
            ? StartOutput(outputs, superseded, baseSequence)
            : outputs[^1];
        return output.Append(record);
    }

    private Output StartOutput(List<Output> outputs, IReadOnlyList<(uint, uint)> superseded, ulong baseSequence)
    {
        if (outputs.Count > 0) outputs[^1].FlushBuffer();
        var id = writer.AllocateSegmentId();
        var header = new SegmentHeader
        {
            Kind = SegmentKind.Compacted,
            SegmentId = id,
            BaseSequence = baseSequence,
            CreatedAtUnixMs = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds(),
            MergeId = outputs.Count == 0 ? id : outputs[0].Header.SegmentId,
            OutputIndex = (ushort)outputs.Count,
            OutputCount = 0, // fixed in FinishOutputs, before the file is fsynced and renamed
            Superseded = superseded,
        };
        if (outputs.Count >= ushort.MaxValue) throw new InvalidOperationException("A compaction run may write at most 65535 outputs.");
        var output = new Output(fs, directory, header, hints);
        outputs.Add(output);
        return output;
    }

    private static void FinishOutputs(List<Output> outputs)
    {
        foreach (var o in outputs) o.Finish((ushort)outputs.Count);
    }

    internal static IReadOnlyList<(uint First, uint Last)> NormalizeRanges(IEnumerable<(uint First, uint Last)> ranges)
    {
        var result = new List<(uint First, uint Last)>();
        foreach (var r in ranges.OrderBy(r => r.First))
        {
            if (result.Count > 0 && r.First <= (ulong)result[^1].Last + 1)
                result[^1] = (result[^1].First, Math.Max(result[^1].Last, r.Last));
            else result.Add(r);
        }
        return result;
    }

    private readonly record struct Relocation(int Input, KeyLocation From, KeyLocation To);

    private sealed class Counts
    {
        public long Kept, Dropped, Expired, TombstonesKept;
    }

    /// <summary>Keeps compaction I/O under <see cref="BitcaskOptions.CompactionBytesPerSecond"/>.</summary>
    private sealed class Throttle(long bytesPerSecond)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _bytes;

        public void Wait(int bytes, CancellationToken ct)
        {
            if (bytesPerSecond <= 0) return;
            _bytes += bytes;
            var due = TimeSpan.FromSeconds((double)_bytes / bytesPerSecond) - _clock.Elapsed;
            if (due > TimeSpan.FromMilliseconds(5)) ct.WaitHandle.WaitOne(due);
        }
    }

    /// <summary>One output segment being written under its temporary name, with its hint built alongside.</summary>
    private sealed class Output
    {
        private readonly IStorageFileSystem _fs;
        private readonly HintWriter _hints;
        private IStorageFile? _file;
        private readonly byte[] _buffer = new byte[1 << 20];
        private int _buffered;
        private long _written;
        private readonly ArrayBufferWriter<byte> _hint = new(64 << 10);
        private ulong _hintEntries;
        private ulong _minSequence = ulong.MaxValue, _maxSequence;

        public Output(IStorageFileSystem fs, string directory, SegmentHeader header, HintWriter hints)
        {
            _fs = fs;
            _hints = hints;
            Header = header;
            FinalPath = Path.Combine(directory, StoreFiles.SegmentName(header.SegmentId));
            TempPath = FinalPath + StoreFiles.TempExtension;
            HintFinalPath = Path.Combine(directory, StoreFiles.HintName(header.SegmentId));
            HintTempPath = HintFinalPath + StoreFiles.TempExtension;
            if (fs.FileExists(TempPath)) fs.Delete(TempPath);
            _file = fs.OpenFile(TempPath, StorageOpenMode.CreateNew);
            var bytes = header.Encode();
            try
            {
                _file.Write(0, bytes);
            }
            catch
            {
                Abandon(fs); // not yet in the run's list of outputs: clean up here
                throw;
            }
            _written = bytes.Length;
            HintFile.BeginIncremental(_hint, header.SegmentId);
        }

        public SegmentHeader Header { get; private set; }
        public string FinalPath { get; }
        public string TempPath { get; }
        public string HintFinalPath { get; }
        public string HintTempPath { get; }
        public long Length => _written + _buffered;
        public bool HasRecords => _hintEntries > 0;

        public KeyLocation Append(ReadOnlySpan<byte> record)
        {
            var offset = Length;
            if (_buffered + record.Length > _buffer.Length) FlushBuffer();
            if (record.Length > _buffer.Length) { _file!.Write(_written, record); _written += record.Length; }
            else { record.CopyTo(_buffer.AsSpan(_buffered)); _buffered += record.Length; }
            HintFile.AppendEntry(_hint, new HintEntry(RecordCodec.ReadKind(record), (uint)offset, (uint)record.Length,
                RecordCodec.ReadSequence(record), RecordCodec.ReadExpiresAt(record)), RecordCodec.Key(record));
            _hintEntries++;
            var sequence = RecordCodec.ReadSequence(record);
            _minSequence = Math.Min(_minSequence, sequence);
            _maxSequence = Math.Max(_maxSequence, sequence);
            return new KeyLocation(Header.SegmentId, (uint)offset, (uint)record.Length);
        }

        public void FlushBuffer()
        {
            if (_buffered == 0) return;
            _file!.Write(_written, _buffer.AsSpan(0, _buffered));
            _written += _buffered;
            _buffered = 0;
            if (_written - _syncedAt >= SyncEveryBytes)
            {
                // Keeps the kernel's dirty pages bounded, so foreground writes are not throttled behind a large
                // compaction's writeback (the durability point is still the fdatasync in Finish).
                _file.Sync();
                _syncedAt = _written;
            }
        }

        private const long SyncEveryBytes = 8L << 20;
        private long _syncedAt;

        public void Finish(ushort outputCount)
        {
            FlushBuffer();
            Header = Header with { OutputCount = outputCount };
            _file!.Write(0, Header.Encode());
            _file.Sync(); // the output's bytes are durable before its name can replace the inputs
            HintFile.FinishIncrementalHeader(_hint.GetSpanOfWritten(), _written, Header.Crc);
            HintFile.AppendTrailer(_hint, _hintEntries);
            _hints.WriteTemp(HintTempPath, _hint.WrittenSpan);
        }

        public Segment OpenSealed(IStorageFileSystem fs)
        {
            CloseFile();
            var file = fs.OpenFile(FinalPath, StorageOpenMode.ReadOnly);
            var segment = Segment.Open(Header, file, _written, file.Map(_written));
            segment.HasHint = true;
            segment.MinSequence = _minSequence == ulong.MaxValue ? 0 : _minSequence;
            segment.MaxSequence = _maxSequence;
            return segment;
        }

        public void CloseFile()
        {
            _file?.Dispose();
            _file = null;
        }

        /// <summary>Removes the temporary files of an output that will not be used.</summary>
        public void Abandon(IStorageFileSystem fs)
        {
            CloseFile();
            foreach (var path in new[] { TempPath, HintTempPath })
                try { if (fs.FileExists(path)) fs.Delete(path); } catch (IOException) { }
        }
    }
}

internal static class ArrayBufferWriterExtensions
{
    public static Span<byte> GetSpanOfWritten(this ArrayBufferWriter<byte> writer) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(writer.WrittenSpan), writer.WrittenCount);
}
