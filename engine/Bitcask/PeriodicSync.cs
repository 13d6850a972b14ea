namespace Bitcask;

/// <summary>
/// The background timer of <see cref="Durability.Buffered"/> and <see cref="Durability.Flushed"/> mode: every
/// <see cref="BitcaskOptions.SyncInterval"/> it queues a flush (Buffered without an interval: every 100 ms) or an
/// fdatasync through group commit, like a caller's <see cref="BitcaskStore.Sync"/>.
/// <para>Thread-safety: the timer callback runs on the thread pool; <see cref="Dispose"/> may be called from any thread
/// (a callback already running may still complete).</para>
/// </summary>
internal sealed class PeriodicSync : IDisposable
{
    private readonly ITimer _timer;
    private readonly WriteRequestKind _kind;
    private readonly GroupCommit _commit;
    private readonly SegmentWriter _writer;
    private readonly Func<bool> _storeDisposed;

    private PeriodicSync(TimeSpan period, WriteRequestKind kind, GroupCommit commit, SegmentWriter writer, Func<bool> storeDisposed)
    {
        _kind = kind;
        _commit = commit;
        _writer = writer;
        _storeDisposed = storeDisposed;
        _timer = TimeProvider.System.CreateTimer(_ => Tick(), null, period, period);
    }

    /// <summary>Starts the timer the options ask for, or returns null (Synced mode; Flushed without an interval).</summary>
    public static PeriodicSync? Start(BitcaskOptions options, GroupCommit commit, SegmentWriter writer, Func<bool> storeDisposed)
    {
        var period = options.Durability switch
        {
            Durability.Buffered => options.SyncInterval ?? TimeSpan.FromMilliseconds(100),
            Durability.Flushed => options.SyncInterval,
            _ => null,
        };
        if (period is not { } p) return null;
        var kind = options.Durability == Durability.Buffered && options.SyncInterval is null ? WriteRequestKind.Flush : WriteRequestKind.Sync;
        return new PeriodicSync(p, kind, commit, writer, storeDisposed);
    }

    private void Tick()
    {
        if (_storeDisposed() || _writer.RefuseReason is not null) return;
        try
        {
            var request = new WriteRequest();
            request.Reset(_kind);
            _commit.Submit(request);
        }
        catch (Exception)
        {
            // Already logged by the write path; the next caller's write reports it.
        }
    }

    public void Dispose() => _timer.Dispose();
}
