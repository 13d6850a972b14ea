using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>
/// What a writable store runs besides its callers' reads and writes: hint files for sealed segments, background
/// compaction (woken by each rollover and every <see cref="BitcaskOptions.CompactionCheckInterval"/>, choosing by
/// <see cref="CompactionPolicy"/>), explicit compactions, and the <see cref="PeriodicSync"/> timer. Hint writes and
/// compactions take turns (one at a time), and a backup takes its cut between them (<see cref="RunExclusive"/>).
/// Nothing runs before <see cref="Start"/>, the open's last step; <see cref="Stop"/> and <see cref="WaitForPendingWork"/>
/// end it at close or after a failed open.
/// <para>Thread-safety: <see cref="Start"/>, <see cref="Stop"/> and <see cref="WaitForPendingWork"/> are called once each,
/// in that order, by the store's open and close; <see cref="Compact"/> and the properties may be used from any thread.</para>
/// </summary>
internal sealed class BackgroundWork(BitcaskOptions options, ILogger logger, KeyDir keyDir, SegmentSet segments, SegmentWriter writer,
    GroupCommit commit, HintWriter hints, Compactor compactor, Func<bool> storeDisposed, Action throwIfDisposed)
{
    private readonly SemaphoreSlim _maintenance = new(1, 1);   // one compaction or hint write at a time
    private readonly List<Task> _hintWrites = [];              // guarded by itself
    private readonly CancellationTokenSource _closing = new();
    private readonly SemaphoreSlim _compactionWake = new(0);
    private Task? _compactionLoop;                             // set by Start
    private PeriodicSync? _periodicSync;                       // set by Start
    private volatile CompactionResult? _lastCompaction;
    private int _compactionRunning;

    /// <summary>The store's directory: the <c>db.namespace</c> of compaction metrics and traces.</summary>
    public string StoreDirectory { get; init; } = "";

    /// <summary>The last compaction that merged something.</summary>
    public CompactionResult? LastCompaction => _lastCompaction;

    /// <summary>True while a compaction (background or explicit) runs.</summary>
    public bool CompactionRunning => Volatile.Read(ref _compactionRunning) != 0;

    /// <summary>Starts hint writes for <paramref name="segmentsWithoutHint"/> and for every segment sealed from now on,
    /// background compaction when enabled, and the sync timer the durability mode asks for.</summary>
    public void Start(IReadOnlyList<Segment> segmentsWithoutHint)
    {
        writer.SegmentSealed += segment =>
        {
            ScheduleHint(segment);
            if (options.CompactionEnabled) _compactionWake.Release();
        };
        foreach (var segment in segmentsWithoutHint) ScheduleHint(segment);
        if (options.CompactionEnabled)
            _compactionLoop = Task.Factory.StartNew(CompactionLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _periodicSync = PeriodicSync.Start(options, commit, writer, storeDisposed);
    }

    /// <summary>Stops the sync timer and background compaction (waiting for a run in progress, which is cancelled) and
    /// cancels a waiting explicit compaction. Hint writes go on until <see cref="WaitForPendingWork"/>.</summary>
    public void Stop()
    {
        _periodicSync?.Dispose();
        _closing.Cancel();
        _compactionWake.Release();
        try { _compactionLoop?.Wait(); } catch (AggregateException) { }
    }

    /// <summary>Waits for every scheduled hint write (also those the final seal scheduled) and for an explicit compaction
    /// running on another thread; afterwards nothing of this store touches a file.</summary>
    public void WaitForPendingWork()
    {
        Task[] pending;
        lock (_hintWrites) pending = [.. _hintWrites];
        try { Task.WaitAll(pending); } catch (AggregateException) { }
        _maintenance.Wait(); // a manual Compact on another thread finishes (it was cancelled) before files close
    }

    /// <summary>
    /// Seals the active segment, then merges what <paramref name="choose"/> picks of the sealed segments (or, when null, what
    /// <see cref="CompactionPolicy.ExplicitInputs"/> picks). Waits for a compaction or hint write in progress; returns
    /// <see cref="CompactionResult.Cancelled"/> when <paramref name="ct"/> fires or the store closes meanwhile.
    /// </summary>
    public CompactionResult Compact(Func<IReadOnlyList<Segment>, IReadOnlyList<Segment>>? choose, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _closing.Token);
        try
        {
            _maintenance.Wait(linked.Token);
        }
        catch (OperationCanceledException)
        {
            throwIfDisposed();
            return new CompactionResult { Cancelled = true };
        }
        try
        {
            throwIfDisposed();
            var seal = new WriteRequest();
            seal.Reset(WriteRequestKind.Seal);
            commit.Submit(seal);
            var sealedSegments = SealedSegments();
            return RunCompaction(choose is not null ? choose(sealedSegments) : CompactionPolicy.ExplicitInputs(sealedSegments, keyDir), linked.Token);
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>Runs <paramref name="action"/> while no compaction or hint write runs (under the maintenance lock), so the
    /// segment set cannot change except by a writer's rollover. Waits for one in progress; throws
    /// <see cref="OperationCanceledException"/> when <paramref name="ct"/> fires first, <see cref="ObjectDisposedException"/>
    /// when the store closes first.</summary>
    public T RunExclusive<T>(Func<T> action, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _closing.Token);
        try
        {
            _maintenance.Wait(linked.Token);
        }
        catch (OperationCanceledException)
        {
            throwIfDisposed();
            throw;
        }
        try
        {
            throwIfDisposed();
            return action();
        }
        finally
        {
            _maintenance.Release();
        }
    }

    private List<Segment> SealedSegments() => segments.Snapshot().Where(s => !s.IsActive).ToList();

    /// <summary>Runs before every compaction: the store's expiry sweep, so that a value whose time to live ran out gets its
    /// expired tombstone (and a watcher its Expire event) before the merge drops the value.</summary>
    public Action? BeforeCompaction { get; set; }

    private CompactionResult RunCompaction(IReadOnlyList<Segment> inputs, CancellationToken ct)
    {
        Interlocked.Exchange(ref _compactionRunning, 1);
        try
        {
            BeforeCompaction?.Invoke();
            using var activity = Telemetry.StartActivity("bitcask.compact", StoreDirectory);
            activity?.SetTag("bitcask.segments_in", inputs.Count);
            CompactionResult result;
            try
            {
                result = compactor.Run(inputs, ct);
            }
            catch (Exception e) when (Telemetry.Failed(activity, e))
            {
                throw;
            }
            if (result.SegmentsIn > 0 && !result.Cancelled) _lastCompaction = result;
            Telemetry.Compacted(StoreDirectory, result);
            activity?.SetTag("bitcask.bytes_before", result.BytesBefore);
            activity?.SetTag("bitcask.bytes_after", result.BytesAfter);
            activity?.SetTag("bitcask.cancelled", result.Cancelled);
            return result;
        }
        finally
        {
            Interlocked.Exchange(ref _compactionRunning, 0);
        }
    }

    private List<Segment> BackgroundInputs() =>
        CompactionPolicy.BackgroundInputs(SealedSegments(), keyDir, options, options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds());

    /// <summary>Background compaction: wakes after each rollover and every <see cref="BitcaskOptions.CompactionCheckInterval"/>;
    /// ends when the store closes, its write path fails, or compaction is disabled until reopen.</summary>
    private void CompactionLoop()
    {
        var token = _closing.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                _compactionWake.Wait(options.CompactionCheckInterval, token);
                if (token.IsCancellationRequested || writer.RefuseReason is not null || compactor.DisabledReason is not null) return;
                var inputs = BackgroundInputs();
                if (inputs.Count == 0) continue;
                if (!_maintenance.Wait(0)) continue; // a manual compaction or a hint write is running; check again later
                try
                {
                    RunCompaction(BackgroundInputs(), token);
                }
                finally
                {
                    _maintenance.Release();
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception)
            {
                // Logged by the compactor; the inputs are unchanged and the next check retries.
                if (token.WaitHandle.WaitOne(options.CompactionCheckInterval)) return;
            }
        }
    }

    /// <summary>Writes a sealed segment's hint file in the background (taking turns with compaction).</summary>
    private void ScheduleHint(Segment segment)
    {
        var task = Task.Run(() =>
        {
            _maintenance.Wait();
            try
            {
                hints.WriteFor(segment);
            }
            catch (Exception e)
            {
                Log.HintWriteFailed(logger, segment.Id, e.Message); // only slows the next open: it scans the segment instead
            }
            finally
            {
                _maintenance.Release();
            }
        });
        lock (_hintWrites)
        {
            _hintWrites.RemoveAll(t => t.IsCompleted);
            _hintWrites.Add(task);
        }
    }
}
