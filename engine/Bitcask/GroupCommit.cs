using System.Buffers;

namespace Bitcask;

internal enum WriteRequestKind : byte
{
    /// <summary>One encoded record (a put, a tombstone or a batch) in <see cref="WriteRequest.Buffer"/>.</summary>
    Record,
    /// <summary>Hand buffered bytes to the OS.</summary>
    Flush,
    /// <summary>Hand buffered bytes to the OS and fdatasync, then write and fdatasync a sync marker (explicit and periodic syncs).</summary>
    Sync,
    /// <summary>Sync, then seal the active segment; the next write starts a new one (before a compaction).</summary>
    Seal,
    /// <summary>Sync with a sync marker, then seal the active segment (store close).</summary>
    Close,
    /// <summary>Revoke lease <see cref="WriteRequest.LeaseId"/>: the leader turns it into one batch that deletes every key
    /// still attached to the lease and the lease itself (then handles it as a <see cref="Record"/>).</summary>
    RevokeLease,
    /// <summary>Hand buffered bytes to the OS, then, at the end of the group, record in <see cref="WriteRequest.Cut"/> the
    /// segment set, the active segment's length and the applied revision, all as of that one moment (a backup's cut).</summary>
    Cut,
}

/// <summary>A condition of a conditional write: the key at <see cref="KeyStart"/> in the request's condition keys must
/// have version <see cref="Expected"/> (&gt; 0), or be absent (<see cref="Absent"/>) or present (<see cref="Exists"/>).</summary>
internal readonly record struct WriteCondition(int KeyStart, int KeyLength, long Expected)
{
    public const long Absent = 0;
    public const long Exists = -1;
    /// <summary>The key's newest record is a put whose time to live has run out (the expiry sweeper's tombstone).</summary>
    public const long Expired = -2;
}

/// <summary>One caller's write waiting in the group-commit queue. Reused per thread for synchronous calls.</summary>
internal sealed class WriteRequest
{
    public WriteRequestKind Kind;
    public byte[] Buffer = new byte[256];
    public int Length;
    /// <summary>Set by the leader: where the record was appended.</summary>
    public Segment? Target;
    public long Offset;
    /// <summary>Set by the leader: whether a tombstone removed a live key.</summary>
    public bool RemovedLive;
    /// <summary>Set by the leader: the request is finished (or failed, see <see cref="Error"/>).</summary>
    public bool Done;
    public Exception? Error;
    /// <summary>Number of the last group this request was committed in (see <see cref="GroupCommit"/>'s leader wait).</summary>
    public long LastGroup = -1;
    public readonly ManualResetEventSlim Signal = new(false, spinCount: 64);
    /// <summary>For async callers: completed with true when the caller must lead, false when done.</summary>
    public TaskCompletionSource<bool>? Async;

    /// <summary>A per-call override of the store's durability mode for this write; null = the store's mode.</summary>
    public Durability? DurabilityOverride;
    /// <summary>Conditions the leader checks against the newest state before appending the record (etcd's Txn compare):
    /// <see cref="Conditions"/>[i] names a key in <see cref="ConditionKeys"/> and the version it must have.</summary>
    public int ConditionCount;
    public WriteCondition[] Conditions = [];
    public byte[] ConditionKeys = [];
    private int _conditionKeysUsed;
    /// <summary>Set by the leader: the index of the first condition that did not hold (nothing was written), or -1.</summary>
    public int FailedCondition;
    /// <summary>Set by the leader: a problem with this request alone (a damaged record met while checking a condition);
    /// nothing was written and the store goes on.</summary>
    public Exception? RequestError;
    /// <summary>The lease a <see cref="WriteRequestKind.RevokeLease"/> request revokes.</summary>
    public long LeaseId;
    /// <summary>Set by the leader for a <see cref="WriteRequestKind.Cut"/> request.</summary>
    public StoreCut? Cut;

    /// <summary>Adds a condition: the key's version must be <paramref name="expected"/> (&gt; 0), the key must be absent
    /// (<see cref="WriteCondition.Absent"/>) or present (<see cref="WriteCondition.Exists"/>).</summary>
    public void AddCondition(ReadOnlySpan<byte> key, long expected)
    {
        if (ConditionCount == Conditions.Length) Array.Resize(ref Conditions, Math.Max(4, Conditions.Length * 2));
        if (_conditionKeysUsed + key.Length > ConditionKeys.Length) Array.Resize(ref ConditionKeys, Math.Max(64, Math.Max(_conditionKeysUsed + key.Length, ConditionKeys.Length * 2)));
        key.CopyTo(ConditionKeys.AsSpan(_conditionKeysUsed));
        Conditions[ConditionCount++] = new WriteCondition(_conditionKeysUsed, key.Length, expected);
        _conditionKeysUsed += key.Length;
    }

    public ReadOnlySpan<byte> ConditionKey(int i) => ConditionKeys.AsSpan(Conditions[i].KeyStart, Conditions[i].KeyLength);

    public Span<byte> Reserve(int length)
    {
        if (Buffer.Length < length) Buffer = new byte[Math.Max(length, Buffer.Length * 2)];
        Length = length;
        return Buffer.AsSpan(0, length);
    }

    public void Reset(WriteRequestKind kind)
    {
        Kind = kind;
        Length = 0;
        RemovedLive = false;
        Target = null;
        Done = false;
        Error = null;
        Async = null;
        DurabilityOverride = null;
        ConditionCount = 0;
        _conditionKeysUsed = 0;
        FailedCondition = -1;
        RequestError = null;
        LeaseId = 0;
        Cut = null;
        if (Signal.IsSet) Signal.Reset(); // a lone writer that led itself was never signalled: skip the atomic update
    }
}

/// <summary>
/// LevelDB-style group commit. Writers queue up; the writer at the head of the queue leads: it takes every request
/// queued behind it, hands them to <see cref="ILeaderWork"/> (one write system call, one fdatasync in Synced mode),
/// then releases the followers and hands leadership to the next waiting writer. A lone writer leads itself with no
/// thread hand-off.
/// <para>When a commit is slow (an fdatasync), a leader first waits a little for the writers of the previous group that
/// have not queued again yet (PostgreSQL's commit_delay/commit_siblings, keyed on the previous group): without it, N
/// concurrent durable writers split into two cohorts that alternate, each fsync covering about N/2 of them, because the
/// writers released by one commit are not back in the queue before the next leader starts. The wait ends when they are
/// all back or after half the recent commit time, whichever comes first (bench/NOTES.md, "Durable puts").</para>
/// <para>Thread-safety: all members are safe to call concurrently.</para>
/// </summary>
internal sealed class GroupCommit(GroupCommit.ILeaderWork work, int maxGroupBytes, bool inlineCompletions = false)
{
    internal interface ILeaderWork
    {
        /// <summary>Performs the I/O for a group, in order. Throws when the group could not be made durable
        /// (or the write path already failed earlier).</summary>
        void Commit(List<WriteRequest> group);
        /// <summary>Non-null once new writes are refused (failed write path, closing store).</summary>
        Exception? RefuseReason { get; }
    }

    private readonly Lock _lock = new();
    private readonly Queue<WriteRequest> _queue = new();
    private readonly List<WriteRequest> _group = new(); // owned by the current leader, from taking the queue until it wakes the next
    // Written under _lock; the leader's wait reads them without it (a stale value only shortens or lengthens one bounded wait).
    private long _groupNumber;        // groups committed so far
    private int _lastGroupSize;       // synchronous writers' requests in the last committed group
    private int _backFromLastGroup;   // of those, how many are queued again
    private long _commitTicks;        // recent commit duration (moving average, Stopwatch ticks); written by the leader only
    private long _enqueued;           // requests queued so far
    private long _releasedAt;         // _enqueued when the last group was released
    private int _lastAsyncGroupSize;  // async writers' requests in the last committed group (each call brings a new request)

    /// <summary>Commits faster than this never wait for writers (a write system call without fsync is cheaper than a hand-off).</summary>
    private static readonly long SlowCommitTicks = System.Diagnostics.Stopwatch.Frequency / 10_000; // 100 µs

    /// <summary>Upper bound of a leader's wait for writers.</summary>
    private static readonly long MaxWaitTicks = System.Diagnostics.Stopwatch.Frequency / 500; // 2 ms

    /// <summary>Queues <paramref name="request"/> and returns once it is committed; throws what the commit threw.</summary>
    public void Submit(WriteRequest request, bool evenIfRefused = false)
    {
        bool lead;
        lock (_lock)
        {
            if (!evenIfRefused && work.RefuseReason is { } refused) throw Rethrowable(refused);
            EnqueueLocked(request);
            lead = _queue.Count == 1;
        }
        if (lead)
        {
            Lead(request, alone: true);
            return;
        }
        request.Signal.Wait();
        if (request.Done)
        {
            if (request.Error is not null) throw Rethrowable(request.Error);
            return;
        }
        Lead(request);
    }

    /// <summary>Queues <paramref name="request"/> and completes once it is committed. The caller's thread never blocks
    /// and never leads: a group whose head is an async request is led by the committer thread, which goes straight on to
    /// the next such group (no thread-pool hop between groups).</summary>
    public async ValueTask SubmitAsync(WriteRequest request)
    {
        bool lead;
        // Inline completions: the completer thread runs the caller's continuation itself (BitcaskOptions.InlineAsyncCompletions).
        var done = new TaskCompletionSource<bool>(inlineCompletions ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
        request.Async = done;
        lock (_lock)
        {
            if (work.RefuseReason is { } refused) throw Rethrowable(refused);
            EnqueueLocked(request);
            lead = _queue.Count == 1;
        }
        if (lead) Committer().Post(request);
        await done.Task.ConfigureAwait(false);
        if (request.Error is not null) throw Rethrowable(request.Error);
    }

    private AsyncCommitter? _committer;

    private AsyncCommitter Committer()
    {
        if (Volatile.Read(ref _committer) is { } existing) return existing;
        var created = new AsyncCommitter(this);
        return Interlocked.CompareExchange(ref _committer, created, null) ?? created.Start();
    }

    /// <summary>Stops the committer and completer threads (the store is closed; no async write can be queued any more).</summary>
    public void Close()
    {
        Volatile.Read(ref _committer)?.Stop();
        _completions.Complete();
    }

    /// <summary>The async callers of one committed group, completed in order; each is claimed once, so the completer thread
    /// and a thread-pool helper can share a batch.</summary>
    private sealed class CompletionBatch(int capacity)
    {
        public readonly List<TaskCompletionSource<bool>> Waiters = new(capacity);
        private int _next;

        /// <summary>Completes every waiter not yet claimed; the continuations run on the calling thread. With
        /// <paramref name="stamp"/>, <paramref name="started"/> is set to the time each continuation starts.</summary>
        public void CompleteRest(ref long started, bool stamp)
        {
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < Waiters.Count)
            {
                if (stamp) Volatile.Write(ref started, System.Diagnostics.Stopwatch.GetTimestamp());
                Waiters[i].TrySetResult(true);
            }
        }
    }

    // Inline completions (BitcaskOptions.InlineAsyncCompletions): a group's async callers resume one after another on the
    // completer thread, with no thread-pool hop per caller (one wake-up per group, and no idle pool worker spinning after
    // each). When a group commits while the completer has been in one continuation for StallTicks or more (one that
    // blocks, or runs long), the thread pool takes over the queued batches and what the current one has not reached.
    private readonly HandOff<CompletionBatch> _completions = new();
    private CompletionBatch? _completing;   // the batch the completer thread runs; null when it is idle
    private long _continuationStarted;      // when the completer thread started its current continuation (Stopwatch ticks)
    private int _completerStarted;
    private static readonly long StallTicks = System.Diagnostics.Stopwatch.Frequency / 1000; // 1 ms

    private void CompleteBatched(WriteRequest[] released, int count)
    {
        CompletionBatch? batch = null;
        for (var i = 0; i < count; i++)
            if (released[i].Async is { } tcs) (batch ??= new CompletionBatch(count)).Waiters.Add(tcs);
            else released[i].Signal.Set();
        if (batch is null) return;
        if (Interlocked.Exchange(ref _completerStarted, 1) == 0)
            new Thread(RunCompleter) { IsBackground = true, Name = "Bitcask completions" }.Start();
        if (!_completions.TryAdd(batch))
        {
            HelpComplete(batch); // closed
            return;
        }
        if (Volatile.Read(ref _completing) is not { } current
            || System.Diagnostics.Stopwatch.GetTimestamp() - Volatile.Read(ref _continuationStarted) < StallTicks) return;
        // The completer is stuck in one continuation: the thread pool completes the rest of its batch and everything queued.
        HelpComplete(current);
        while (_completions.TryTake() is { } queued) HelpComplete(queued);
    }

    private void HelpComplete(CompletionBatch batch) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Owner.Finish(state.Batch), (Owner: this, Batch: batch), preferLocal: false);

    private void Finish(CompletionBatch batch) => batch.CompleteRest(ref _continuationStarted, stamp: false);

    private void RunCompleter()
    {
        while (_completions.Take() is { } batch)
        {
            Volatile.Write(ref _continuationStarted, System.Diagnostics.Stopwatch.GetTimestamp());
            Volatile.Write(ref _completing, batch);
            batch.CompleteRest(ref _continuationStarted, stamp: true);
            Volatile.Write(ref _completing, null);
        }
    }

    /// <summary>
    /// The thread that leads commit groups whose head is an async request, so that their fdatasync never runs on a
    /// thread-pool thread. Started at the first async write that has to lead.
    /// <para>Thread-safety: <see cref="Post"/> may be called from any thread.</para>
    /// </summary>
    private sealed class AsyncCommitter(GroupCommit owner)
    {
        private readonly HandOff<WriteRequest> _work = new();

        public AsyncCommitter Start()
        {
            new Thread(Run) { IsBackground = true, Name = "Bitcask commit" }.Start();
            return this;
        }

        /// <summary>Hands the head of the queue, an async request, to the committer thread to lead its group.</summary>
        public void Post(WriteRequest request)
        {
            if (!_work.TryAdd(request)) owner.Lead(request); // closing: the last writes lead on the posting thread
        }

        public void Stop() => _work.Complete();

        private void Run()
        {
            // Lead completes every request of the group (this one included) and never throws for an async head.
            while (_work.Take() is { } request) owner.Lead(request);
        }
    }

    private void EnqueueLocked(WriteRequest request)
    {
        _queue.Enqueue(request);
        _enqueued++;
        if (request.LastGroup == _groupNumber) _backFromLastGroup++;
    }

    /// <summary>Before a slow commit: waits (yielding the CPU to them) until every writer of the previous group is queued
    /// again, or half the recent commit time has passed. Returns true when it waited. A synchronous writer is recognised
    /// by its reused request; async callers bring a new request per write, so for them the wait counts requests queued
    /// since the previous group was released against the async writers that group held (a server's connections: each
    /// sends its next command once its reply went out).</summary>
    private bool WaitForSiblings()
    {
        var commit = Volatile.Read(ref _commitTicks);
        if (commit < SlowCommitTicks || MissingSiblings() <= 0) return false;
        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + Math.Min(commit / 2, MaxWaitTicks);
        while (MissingSiblings() > 0 && System.Diagnostics.Stopwatch.GetTimestamp() < deadline)
            Thread.Yield(); // on a busy machine the missing writers need this CPU to queue up
        return true;
    }

    private long MissingSiblings() =>
        Volatile.Read(ref _lastGroupSize) - Volatile.Read(ref _backFromLastGroup)
        + Math.Max(0, Volatile.Read(ref _lastAsyncGroupSize) - (Volatile.Read(ref _enqueued) - Volatile.Read(ref _releasedAt)));

    /// <param name="self">The request of the writer that leads.</param>
    /// <param name="alone">The queue was empty when <paramref name="self"/> joined it: lead a group of one without taking
    /// the lock again (writers arriving meanwhile form the next group, which the wake-up below starts at once).</param>
    private void Lead(WriteRequest self, bool alone = false)
    {
        var group = _group;
        group.Clear();
        if (WaitForSiblings()) alone = false; // others may have queued behind self meanwhile
        if (alone) group.Add(self);
        else
            lock (_lock)
            {
                long bytes = 0;
                foreach (var r in _queue)
                {
                    if (group.Count > 0 && bytes + r.Length > maxGroupBytes) break;
                    group.Add(r);
                    bytes += r.Length;
                }
            }

        if (Telemetry.CommitGroupSize.Enabled) Telemetry.CommitGroupSize.Record(group.Count);
        Exception? failure = null;
        // Reading the clock costs tens of ns on a VM (a tenth of a buffered put): fast commits are timed one in 16 only.
        var timed = _commitTicks >= SlowCommitTicks || (Volatile.Read(ref _groupNumber) & 15) == 0;
        var started = timed ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            work.Commit(group);
        }
        catch (Exception e)
        {
            failure = e;
        }
        if (timed)
        {
            var took = System.Diagnostics.Stopwatch.GetTimestamp() - started;
            Volatile.Write(ref _commitTicks, _commitTicks + (took - _commitTicks) / 4);
        }

        // Wake-ups happen outside the lock, the next leader first: it can start its write and fsync at once, and the
        // released followers can queue up for the group after it without fighting the waker for the lock.
        var followers = ArrayPool<WriteRequest>.Shared.Rent(group.Count);
        var released = 0;
        WriteRequest? next = null;
        lock (_lock)
        {
            var number = ++_groupNumber;
            int writers = 0, asyncWriters = 0;
            foreach (var r in group)
            {
                _queue.Dequeue();
                if (r.Kind == WriteRequestKind.Record && r.Async is null)
                {
                    r.LastGroup = number; // a synchronous writer's request is reused by its thread: this recognizes it when it is back
                    writers++;
                }
                else if (r.Kind == WriteRequestKind.Record) asyncWriters++;
                r.Error = failure;
                r.Done = true;
                if (!ReferenceEquals(r, self) || r.Async is not null) followers[released++] = r; // an async leader is completed like a follower
            }
            _lastGroupSize = writers;
            _backFromLastGroup = 0;
            _lastAsyncGroupSize = asyncWriters;
            _releasedAt = _enqueued;
            group.Clear(); // before the next leader can start: it reuses the list
            if (_queue.Count > 0)
            {
                next = _queue.Peek();
                next.Done = false;
            }
        }
        if (next is not null)
        {
            if (next.Async is null) next.Signal.Set(); // a synchronous writer leads on its own thread
            else Committer().Post(next); // the committer leads async heads (and, when this is the committer, goes on to it at once)
        }
        if (inlineCompletions) CompleteBatched(followers, released);
        else for (var i = 0; i < released; i++) Complete(followers[i]);
        Array.Clear(followers, 0, released);
        ArrayPool<WriteRequest>.Shared.Return(followers);
        if (failure is not null && self.Async is null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary>Tells a committed (or failed: <see cref="WriteRequest.Error"/>) request's caller it is done.</summary>
    private static void Complete(WriteRequest r)
    {
        if (r.Async is { } tcs) tcs.TrySetResult(true);
        else r.Signal.Set();
    }

    /// <summary>Each waiter gets its own exception object (the same one thrown on several threads loses stack traces).</summary>
    private static Exception Rethrowable(Exception e) => e switch
    {
        ObjectDisposedException d => new ObjectDisposedException(d.ObjectName, d.Message),
        IOException io => new IOException(io.Message, io),
        _ => new IOException(e.Message, e),
    };
}

/// <summary>A queue from any thread to one consumer thread that sleeps (without spinning) while it is empty.
/// <para>Thread-safety: all members are safe to call concurrently; <see cref="Take"/> from one thread.</para></summary>
internal sealed class HandOff<T> where T : class
{
    private readonly Queue<T> _items = new();
    private bool _complete, _waiting;

    /// <summary>Queues <paramref name="item"/>; false once <see cref="Complete"/> was called.</summary>
    public bool TryAdd(T item)
    {
        lock (_items)
        {
            if (_complete) return false;
            _items.Enqueue(item);
            if (_waiting) Monitor.Pulse(_items);
            return true;
        }
    }

    /// <summary>No more items: <see cref="Take"/> returns null once the queue is empty.</summary>
    public void Complete()
    {
        lock (_items)
        {
            _complete = true;
            Monitor.Pulse(_items);
        }
    }

    /// <summary>The next item if there is one, without waiting.</summary>
    public T? TryTake()
    {
        lock (_items) return _items.Count > 0 ? _items.Dequeue() : null;
    }

    /// <summary>The next item, waiting for one; null after <see cref="Complete"/> once the queue is empty.</summary>
    public T? Take()
    {
        lock (_items)
        {
            while (_items.Count == 0)
            {
                if (_complete) return null;
                _waiting = true;
                Monitor.Wait(_items);
                _waiting = false;
            }
            return _items.Dequeue();
        }
    }
}
