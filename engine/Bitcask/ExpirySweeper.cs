namespace Bitcask;

/// <summary>
/// Writes what time decides: a tombstone (flagged expired) for every key whose time to live ran out, so a watcher sees
/// an Expire event at the revision that wrote it, and a revoke for every lease not kept alive within its time to live.
/// Runs on a timer of the store's <see cref="BitcaskOptions.TimeProvider"/> (a fake clock in tests drives it), every
/// <see cref="Period"/>; each tombstone is conditional on the key still being expired when it commits, so a write that
/// races it wins.
/// <para>Thread-safety: <see cref="Start"/> and <see cref="Stop"/> are called once each by the store; sweeps never overlap.</para>
/// </summary>
internal sealed class ExpirySweeper(TimeProvider clock, Action sweep)
{
    /// <summary>How often expired keys and leases are looked for.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(250);

    private readonly Lock _gate = new();
    private ITimer? _timer;
    private bool _stopped;

    public void Start()
    {
        lock (_gate)
            if (!_stopped) _timer = clock.CreateTimer(_ => Tick(), null, Period, Timeout.InfiniteTimeSpan);
    }

    /// <summary>One timer tick: a sweep, then the timer is armed again (one-shot, so a clock that jumps far ahead runs one
    /// sweep, not one per period it skipped).</summary>
    private void Tick()
    {
        Run();
        lock (_gate)
            if (!_stopped) _timer?.Change(Period, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Runs one sweep now, waiting for one in progress to end first (before a compaction).</summary>
    public void RunNow()
    {
        lock (_gate)
        {
            if (_stopped) return;
            try { sweep(); }
            catch (Exception) { /* as in Run: the writes report their own failures */ }
        }
    }

    /// <summary>Runs one sweep now (tests; also the timer).</summary>
    public void Run()
    {
        if (!_gate.TryEnter()) return; // a sweep is running: the next tick covers what it misses
        try
        {
            if (_stopped) return;
            sweep();
        }
        catch (Exception)
        {
            // A failed sweep (closing store, failed write path) is reported by the writes themselves; the next tick retries.
        }
        finally
        {
            _gate.Exit();
        }
    }

    public void Stop()
    {
        lock (_gate)
        {
            _stopped = true;
            _timer?.Dispose();
            _timer = null;
        }
    }
}
