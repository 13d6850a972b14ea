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
    SegmentWriter writer, GroupCommit commit, HintWriter hints, ILogger logger)
{
    /// <summary>Test seam: called with the name of each step as it is reached ("written", "renamed", "switched", "deleted").</summary>
    internal Action<string>? StepHook { get; set; }

    /// <summary>Makes every write the keydir already shows durable (a group-commit Sync). Called just before the commit
    /// point: the run dropped each record the keydir showed superseded or deleted, and in Buffered mode (or Flushed, on a
    /// power loss) the write that superseded it may still be only in memory; were the inputs replaced first, a crash would
    /// lose both the new write and the old record, and the key would vanish or an older value come back (bug 14).</summary>
    private void MakeWritesDurable()
    {
        var sync = new WriteRequest();
        sync.Reset(WriteRequestKind.Sync);
        commit.Submit(sync);
    }

    public CompactionResult Run(IReadOnlyList<Segment> candidates, CancellationToken ct)
    {
        if (_disabled is { } disabled)
            throw new IOException($"Compaction is disabled for this store instance: {disabled.Message} Reopen the store: open settles the directory.", disabled);
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
            var tombstone = new byte[RecordCodec.HeaderSize + ushort.MaxValue]; // keys written under larger limits than this open's

            for (var i = 0; i < inputs.Count; i++)
            {
                var input = inputs[i];
                var data = input.Read(0, (int)input.Length, ref scratch);
                var scanner = new SegmentScanner(data, input.Header.Size, RecordLimits.For(input.Header.Version)); // the format's limits, not this open's
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
                            var (output, at) = Append(outputs, entry, superseded, baseSequence);
                            relocations.Add(new Relocation(i, from, output, at));
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
            // The outputs take their ids only now, as one block, so that each output's header names every id of its run
            // (merge id + index): open can then tell an output a later compaction replaced from one that never landed.
            var firstId = writer.AllocateSegmentIds(outputs.Count);
            for (var k = 0; k < outputs.Count; k++) outputs[k].Finish(firstId + (uint)k, firstId, (ushort)outputs.Count);
            StepHook?.Invoke("written");
            MakeWritesDurable(); // every write that made a record of the run dead is durable before the inputs are replaced

            foreach (var o in outputs)
            {
                fs.Rename(o.TempPath, o.FinalPath);
                o.Renamed = true;
            }
            fs.SyncDirectory(directory); // commit point: every output of the run is durable under its final name
            committed = true;
            // From here the next open takes the outputs in place of the inputs, whatever happens next. So each later step
            // either completes (retried when it fails), or is left for open to finish (a hint, a delete, a directory
            // fsync), or disables compaction until reopen: outputs on disk but outside the segment set would let a later
            // run drop a tombstone whose older put they hold, and the next open would bring the deleted key back.
            RenameHints(outputs);
            var opened = OpenOutputs(outputs);
            segments.Replace([], opened);
            foreach (var r in relocations)
            {
                var key = KeyAt(inputs[r.Input], r.From, ref scratch);
                var to = new KeyLocation(opened[r.Output].Id, r.Offset, r.From.Length);
                if (keyDir.TryRelocate(key, r.From, to)) opened[r.Output].AddLive(to.Length);
            }
            foreach (var (input, from) in removals)
                keyDir.TryRemoveAt(KeyAt(inputs[input], from, ref scratch), from);
            segments.Replace(inputs, []);
            StepHook?.Invoke("switched");

            DeleteInputs(inputs);
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
            if (outputs.Any(o => o.Renamed)) ForgetRenamedOutputs(outputs, e);
            if (e is OperationCanceledException) return new CompactionResult { Cancelled = true, SegmentsIn = inputs.Count, Duration = clock.Elapsed };
            Log.CompactionFailed(logger, e, e.Message);
            throw;
        }
        catch (Exception e)
        {
            // Committed but not installed (an output could not be opened, or the keydir switch failed): the segment set
            // does not describe the directory any more, so no further run may decide what is safe to drop.
            _disabled = new IOException($"an earlier run committed its outputs but could not install them ({e.Message}).", e);
            Log.CompactionFailed(logger, e, "the run committed its outputs but could not install them; compaction is disabled until the store is reopened, reads and writes go on");
            throw new IOException($"Compaction committed its outputs but could not install them: {e.Message}. Reads and writes go on; " +
                "compaction is disabled until the store is reopened (open takes the outputs in place of the inputs).", e);
        }
        finally
        {
            foreach (var o in outputs) o.CloseFile();
            foreach (var s in inputs) s.Release();
        }
    }

    /// <summary>Set when a run left the directory in a state only a reopen settles; every later run refuses (with it as the reason).</summary>
    private volatile Exception? _disabled;

    /// <summary>Non-null once compaction is disabled until the store is reopened; the exception says why.</summary>
    public Exception? DisabledReason => _disabled;

    /// <summary>
    /// The commit failed after some outputs took their final names (which <see cref="Output.Abandon"/> removed again). The
    /// removal must be durable before another run may drop a tombstone those outputs' older copies would outlive; if it
    /// cannot be made durable, no further run is allowed until a reopen settles the directory.
    /// </summary>
    private void ForgetRenamedOutputs(List<Output> outputs, Exception cause)
    {
        try
        {
            if (outputs.FirstOrDefault(o => o.Renamed && fs.FileExists(o.FinalPath)) is { } left)
                throw new IOException($"the output '{left.FinalPath}' of a failed compaction could not be deleted");
            fs.SyncDirectory(directory); // the removal of the partly renamed outputs is durable
        }
        catch (IOException e)
        {
            _disabled = new IOException($"an earlier run could not undo its partly renamed outputs ({e.Message}).", e);
            Log.CompactionFailed(logger, cause, "outputs of a failed run could not be removed durably; compaction is disabled until the store is reopened");
        }
    }

    // ------------------------------------------------------------------ after the commit point

    /// <summary>Attempts per step after the commit point: EMFILE, an mmap limit or a transient EIO may clear.</summary>
    private const int AttemptsAfterCommit = 3;

    /// <summary>Runs an idempotent step after the commit point, retrying I/O errors; rethrows the last one.</summary>
    private static T Retry<T>(Func<T> step)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return step();
            }
            catch (IOException) when (attempt < AttemptsAfterCommit)
            {
                Thread.Sleep(attempt); // a moment for another thread to close a file or unmap
            }
        }
    }

    /// <summary>The hints take their final names, then the directory is fsynced. A hint that cannot be renamed is dropped
    /// (its output then counts as having none, and the next open scans it and writes one); a failed fsync is not retried
    /// (after a failed fsync a retry can report success for changes it did not write) and costs at most that scan.</summary>
    private void RenameHints(List<Output> outputs)
    {
        foreach (var o in outputs)
        {
            try
            {
                Retry(() =>
                {
                    if (fs.FileExists(o.HintTempPath) || !fs.FileExists(o.HintFinalPath)) fs.Rename(o.HintTempPath, o.HintFinalPath);
                    return true;
                });
            }
            catch (IOException e)
            {
                o.HintDropped = true;
                Log.CompactionStepLeftToOpen(logger, $"renaming the hint of output {o.Id}", e.Message);
                try { if (fs.FileExists(o.HintTempPath)) fs.Delete(o.HintTempPath); } catch (IOException) { } // else open removes it
            }
        }
        try
        {
            fs.SyncDirectory(directory); // the outputs' hint names are durable
        }
        catch (IOException e)
        {
            Log.CompactionStepLeftToOpen(logger, "the directory fsync after renaming the hints", e.Message);
        }
        StepHook?.Invoke("renamed");
    }

    /// <summary>Opens (and maps) every output, retrying; when one cannot be opened, closes the others and throws.</summary>
    private List<Segment> OpenOutputs(List<Output> outputs)
    {
        var opened = new List<Segment>(outputs.Count);
        try
        {
            foreach (var o in outputs) opened.Add(Retry(() => o.OpenSealed(fs)));
            return opened;
        }
        catch
        {
            foreach (var s in opened) s.Retire();
            throw;
        }
    }

    /// <summary>Deletes the inputs and their hints, then fsyncs the directory. What cannot be deleted stays for the next open,
    /// which deletes every segment a finished run supersedes (FORMAT.md §5) — and so does every later run's output, whose
    /// header carries these inputs' ids in its superseded ranges.</summary>
    private void DeleteInputs(List<Segment> inputs)
    {
        foreach (var s in inputs)
            foreach (var path in new[] { s.Path, Path.Combine(directory, StoreFiles.HintName(s.Id)) })
            {
                try
                {
                    Retry(() =>
                    {
                        if (fs.FileExists(path)) fs.Delete(path);
                        return true;
                    });
                }
                catch (IOException e)
                {
                    Log.CompactionStepLeftToOpen(logger, $"deleting {Path.GetFileName(path)}", e.Message);
                }
            }
        try
        {
            fs.SyncDirectory(directory); // not needed for safety (see above); makes the space reclaim durable
        }
        catch (IOException e)
        {
            Log.CompactionStepLeftToOpen(logger, "the directory fsync after deleting the inputs", e.Message);
        }
    }

    private static ReadOnlySpan<byte> KeyAt(Segment input, KeyLocation location, ref byte[]? scratch) =>
        RecordCodec.Key(input.Read(location.Offset, (int)location.Length, ref scratch));

    /// <summary>Appends to the current output (starting a new one when it is full); returns the output's index and the offset.</summary>
    private (int Output, uint Offset) Append(List<Output> outputs, ReadOnlySpan<byte> record, IReadOnlyList<(uint, uint)> superseded, ulong baseSequence)
    {
        var output = outputs.Count == 0 || (outputs[^1].HasRecords && outputs[^1].Length + record.Length > options.MaxSegmentBytes)
            ? StartOutput(outputs, superseded, baseSequence)
            : outputs[^1];
        return (outputs.Count - 1, output.Append(record));
    }

    private Output StartOutput(List<Output> outputs, IReadOnlyList<(uint, uint)> superseded, ulong baseSequence)
    {
        if (outputs.Count > 0) outputs[^1].FlushBuffer();
        var header = new SegmentHeader
        {
            Kind = SegmentKind.Compacted,
            SegmentId = 0, // the id, merge id and output count are set in Output.Finish, before the file is fsynced and renamed
            BaseSequence = baseSequence,
            OutputIndex = (ushort)outputs.Count,
            Superseded = superseded,
        }.CreatedAt(options.TimeProvider.GetUtcNow());
        if (outputs.Count >= ushort.MaxValue) throw new InvalidOperationException("A compaction run may write at most 65535 outputs.");
        var output = new Output(fs, directory, header, hints);
        outputs.Add(output);
        return output;
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

    private readonly record struct Relocation(int Input, KeyLocation From, int Output, uint Offset);

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
            _directory = directory;
            Header = header;
            // Runs are serialized and the store is locked to one process, so the output index names the file uniquely.
            TempPath = Path.Combine(directory, StoreFiles.CompactionTempName(header.OutputIndex, StoreFiles.SegmentExtension));
            HintTempPath = Path.Combine(directory, StoreFiles.CompactionTempName(header.OutputIndex, StoreFiles.HintExtension));
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
            _hintNext = bytes.Length;
            HintFile.BeginIncremental(_hint, header.SegmentId);
        }

        private readonly string _directory;
        private long _hintNext; // where the next record's hint entry must start (hint entries tile the segment)
        public SegmentHeader Header { get; private set; }
        public uint Id => Header.SegmentId;
        public string FinalPath => Path.Combine(_directory, StoreFiles.SegmentName(Id));
        public string TempPath { get; }
        public string HintFinalPath => Path.Combine(_directory, StoreFiles.HintName(Id));
        public string HintTempPath { get; }
        /// <summary>Set once the segment took its final name (so a failed commit knows what to remove).</summary>
        public bool Renamed { get; set; }
        public long Length => _written + _buffered;
        public bool HasRecords => _hintEntries > 0;

        /// <summary>Appends a record; returns its offset.</summary>
        public uint Append(ReadOnlySpan<byte> record)
        {
            var offset = Length;
            if (_buffered + record.Length > _buffer.Length) FlushBuffer();
            if (record.Length > _buffer.Length) { _file!.Write(_written, record); _written += record.Length; }
            else { record.CopyTo(_buffer.AsSpan(_buffered)); _buffered += record.Length; }
            HintFile.AppendEntry(_hint, new HintEntry(RecordCodec.ReadKind(record), (uint)offset, (uint)record.Length,
                RecordCodec.ReadSequence(record), RecordCodec.ReadExpiresAt(record)), RecordCodec.Key(record), ref _hintNext);
            _hintEntries++;
            var sequence = RecordCodec.ReadSequence(record);
            _minSequence = Math.Min(_minSequence, sequence);
            _maxSequence = Math.Max(_maxSequence, sequence);
            return (uint)offset;
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

        public void Finish(uint id, uint mergeId, ushort outputCount)
        {
            FlushBuffer();
            Header = Header with { SegmentId = id, MergeId = mergeId, OutputCount = outputCount };
            _file!.Write(0, Header.Encode());
            _file.Sync(); // the output's bytes are durable before its name can replace the inputs
            HintFile.FinishIncrementalHeader(_hint.GetSpanOfWritten(), id, Header.Size, _written, Header.Crc);
            HintFile.AppendTrailer(_hint, _hintEntries);
            _hints.WriteTemp(HintTempPath, _hint.WrittenSpan);
        }

        /// <summary>Set when the hint could not take its final name: the output has no hint file.</summary>
        public bool HintDropped { get; set; }

        public Segment OpenSealed(IStorageFileSystem fs)
        {
            CloseFile();
            var file = fs.OpenFile(FinalPath, StorageOpenMode.ReadOnly);
            Segment segment;
            try
            {
                segment = Segment.Open(Header, file, _written, file.Map(_written));
            }
            catch
            {
                file.Dispose();
                throw;
            }
            segment.HasHint = !HintDropped;
            segment.MinSequence = _minSequence == ulong.MaxValue ? 0 : _minSequence;
            segment.MaxSequence = _maxSequence;
            return segment;
        }

        public void CloseFile()
        {
            _file?.Dispose();
            _file = null;
        }

        /// <summary>Removes the files of an output that will not be used (under its final name when it already took it).</summary>
        public void Abandon(IStorageFileSystem fs)
        {
            CloseFile();
            foreach (var path in Renamed ? new[] { FinalPath, HintTempPath } : new[] { TempPath, HintTempPath })
                try { if (fs.FileExists(path)) fs.Delete(path); } catch (IOException) { }
        }
    }
}

internal static class ArrayBufferWriterExtensions
{
    public static Span<byte> GetSpanOfWritten(this ArrayBufferWriter<byte> writer) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(writer.WrittenSpan), writer.WrittenCount);
}
