using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;

namespace Bitcask.Replication;

/// <summary>
/// The engine as DotNext's Raft state machine. Each committed entry is applied to the node's own
/// <see cref="BitcaskStore"/> together with its log index (one batch), so a restart skips exactly the entries already
/// applied. Snapshots are the engine's own <see cref="BitcaskStore.Backup"/>, taken every
/// <see cref="ReplicationOptions.SnapshotInterval"/> applied entries or <see cref="ReplicationOptions.SnapshotIntervalBytes"/> applied bytes (our schedule, not on every apply); a lagging node
/// receives one as a stream of the backup's files (FORMAT.md, "Replication snapshot stream").
/// DotNext never calls <c>ApplyAsync</c> concurrently; readers take <see cref="_swap"/>'s read side so a
/// snapshot install (which replaces the store) never pulls the store from under them.
/// </summary>
internal sealed class StoreStateMachine : IStateMachine, IDisposable
{
    private readonly string _storeDir;
    private readonly string _snapshotRoot;
    private readonly BitcaskOptions? _storeOptions;
    private readonly long _snapshotInterval;
    private readonly long _snapshotIntervalBytes;
    private long _bytesSinceSnapshot;
    private readonly ILogger _log;
    private readonly ReaderWriterLockSlim _swap = new(LockRecursionPolicy.NoRecursion);
    private BitcaskStore _store;
    private volatile BackupSnapshot? _snapshot;
    private long _applied;
    /// <summary>An entry of several commands found partly applied at open (the store's applied record in its 24-byte
    /// form): its index (0 = none) and how many of its commands are in the store.</summary>
    private long _partialIndex, _partialDone;
    private readonly LogClock _clock = new();

    /// <summary>Test hook: how long every store replacement from a snapshot takes at least (process-wide).</summary>
    internal static TimeSpan? SlowStoreReplaceForTests;

    /// <summary>Test hook: runs before each entry is applied (may block, simulating a slow or crashed applier).</summary>
    internal Func<long, CancellationToken, ValueTask>? BeforeApply;

    /// <summary>Test hook: runs before each command of a multi entry is applied (entry index, command number).</summary>
    internal Func<long, int, CancellationToken, ValueTask>? BeforeCommand;

    internal StoreStateMachine(string storeDir, string snapshotRoot, BitcaskOptions? storeOptions, long snapshotInterval, long snapshotIntervalBytes, ILogger log)
    {
        _storeDir = storeDir;
        _snapshotRoot = snapshotRoot;
        // The store judges expiry by the log's clock (the newest leader stamp applied) and never expires anything on its
        // own: every node then sees and writes the same keys at the same log position (the leader proposes expiry).
        _storeOptions = (storeOptions ?? new BitcaskOptions()) with { TimeProvider = _clock, ExpireInBackground = false };
        _snapshotInterval = snapshotInterval;
        _snapshotIntervalBytes = snapshotIntervalBytes;
        _log = log;
        Directory.CreateDirectory(snapshotRoot);
        foreach (var tmp in Directory.EnumerateFileSystemEntries(snapshotRoot, "*.tmp"))
            DeleteAny(tmp);
        _snapshot = BackupSnapshot.FindNewest(snapshotRoot);
        _store = BitcaskStore.Open(storeDir, _storeOptions);
        _applied = ReadApplied(_store);
        NoteLeases(_store);
        if (_snapshot is { } s && _applied < s.Index)
        {
            // The store lost writes the log no longer holds (wiped, or a power loss took its unsynced tail after the
            // log was truncated below the snapshot): start again from the snapshot.
            _log.LogWarning("Store applied index {Applied} is below the local snapshot {Snapshot}: restoring the snapshot", _applied, s.Index);
            ReplaceStoreFrom(s);
        }
    }

    /// <summary>Index of the newest entry applied to the store.</summary>
    internal long AppliedIndex => Volatile.Read(ref _applied);

    /// <summary>True once a lease may exist in the store (a grant applied, or found at open or install): until then the
    /// leader does not scan for expired leases.</summary>
    internal bool LeasesMayExist => Volatile.Read(ref _leasesMayExist);
    private bool _leasesMayExist;

    private void NoteLeases(BitcaskStore store)
    {
        if (store.Keys(Command.LeasePrefix.ToArray()).Any()) Volatile.Write(ref _leasesMayExist, true);
    }

    /// <summary>The log's clock: the newest leader stamp applied (Unix ms).</summary>
    internal long ClockMs => _clock.Ms;

    /// <summary>Runs <paramref name="read"/> with no entry being applied and no snapshot install running (a consistent
    /// view at <see cref="AppliedIndex"/>).</summary>
    internal T ReadExclusive<T>(Func<BitcaskStore, T> read)
    {
        WaitForInstall();
        _swap.EnterWriteLock();
        try { return read(_store); }
        finally { _swap.ExitWriteLock(); }
    }

    /// <summary>Index of the newest local snapshot (0 when none).</summary>
    internal long SnapshotIndex => _snapshot?.Index ?? 0;

    /// <summary>Runs <paramref name="read"/> on the current store, never during a snapshot install.</summary>
    internal T Read<T>(Func<BitcaskStore, T> read)
    {
        WaitForInstall();
        _swap.EnterReadLock();
        try { return read(_store); }
        finally { _swap.ExitReadLock(); }
    }

    ISnapshot? ISnapshotManager.Snapshot => _snapshot;

    ValueTask ISnapshotManager.ReclaimGarbageAsync(long watermark, CancellationToken token)
    {
        foreach (var dir in Directory.EnumerateDirectories(_snapshotRoot))
            if (BackupSnapshot.TryParseName(Path.GetFileName(dir), out var index, out _) && index < watermark)
                DeleteAny(dir);
        return ValueTask.CompletedTask;
    }

    async ValueTask<long> IStateMachine.ApplyAsync(LogEntry entry, CancellationToken token)
    {
        if (entry.IsSnapshot)
            return await InstallAsync(entry, token).ConfigureAwait(false);
        if (Volatile.Read(ref _installing) is { IsCompleted: false } installing)
            await installing.ConfigureAwait(false); // the store of the snapshot installed last comes first
        if (entry.Index <= AppliedIndex)
            return entry.Index; // applied before a restart (the log's commit checkpoint lagged the store): never twice
        if (BeforeApply is { } hook)
            await hook(entry.Index, token).ConfigureAwait(false);
        if (!entry.TryGetPayload(out var sequence))
            throw new InvalidOperationException("log entry without a readable payload");
        if (sequence.IsEmpty)
        {
            // Raft's own entries (a new leader's no-op, a configuration change): nothing to write; replaying is harmless.
            Volatile.Write(ref _applied, entry.Index);
            return entry.Index;
        }
        var payload = sequence.IsSingleSegment ? sequence.First : sequence.ToArray();
        Volatile.Write(ref _applying, true); // until the entry is whole in the store: no snapshot from SnapshotNow
        CommandResult[] results;
        _clock.Advance(Command.StampOf(payload.Span));
        if (Command.IsMulti(payload.Span))
        {
            // One proposer's command after the other, each its own store batch recording how many of the entry's
            // commands are in the store (the last one records the entry as applied): each command sees the writes of
            // those before it, and a restart resumes the entry after the last command it finds applied.
            var commands = Command.SplitMulti(payload);
            results = new CommandResult[commands.Count];
            var start = _partialIndex == entry.Index ? (int)Math.Min(_partialDone, commands.Count) : 0;
            for (var i = start; i < commands.Count; i++)
            {
                if (BeforeCommand is { } before)
                    await before(entry.Index, i, token).ConfigureAwait(false);
                _swap.EnterReadLock();
                try { results[i] = Command.Apply(_store, commands[i].Span, entry.Index, _clock.Ms, done: i + 1 < commands.Count ? i + 1 : 0); }
                finally { _swap.ExitReadLock(); }
            }
        }
        else
        {
            if (payload.Length >= 2 && payload.Span[1] == Command.KindLeaseGrant) Volatile.Write(ref _leasesMayExist, true);
            _swap.EnterReadLock();
            try { results = [Command.Apply(_store, payload.Span, entry.Index, _clock.Ms)]; }
            finally { _swap.ExitReadLock(); }
        }
        _partialIndex = 0;
        _written = (entry.Index, entry.Term);
        Volatile.Write(ref _applied, entry.Index);
        Volatile.Write(ref _applying, false);
        (entry.Context as Proposal)?.Complete(results, entry.Index);
        _bytesSinceSnapshot += payload.Length;
        if (entry.Index - SnapshotIndex >= _snapshotInterval || _bytesSinceSnapshot >= _snapshotIntervalBytes)
            lock (_snapshotting) TakeSnapshot(entry.Index, entry.Term);
        return entry.Index;
    }

    /// <summary>True while an entry's writes are going into the store (a multi entry's commands release the store lock
    /// between them).</summary>
    private bool _applying;

    /// <summary>Index and term of the newest entry whose writes are in the store (the store records that index; Raft's
    /// empty entries after it write nothing). Read under <see cref="_swap"/>'s write lock.</summary>
    private (long Index, long Term) _written;

    /// <summary>One snapshot at a time (the applier's and <see cref="SnapshotNow"/>).</summary>
    private readonly Lock _snapshotting = new();

    /// <summary>
    /// Takes a snapshot now, of the newest entry whose writes are in the store, when that entry is past the newest
    /// snapshot; false when there is nothing newer or an entry is being applied. Applies and reads wait meanwhile (a
    /// backup: hard links and a copy of the active segment's committed prefix). The leader calls it when idle
    /// (<see cref="ReplicatedStore"/>): DotNext re-sends a follower whose snapshot install the leader timed out on the
    /// same snapshot, which the follower refuses as not newer than what it has, so without a newer one an idle cluster
    /// never catches that follower up.
    /// </summary>
    internal bool SnapshotNow()
    {
        lock (_snapshotting)
        {
            WaitForInstall();
            _swap.EnterWriteLock(); // no apply between reading the index and the backup
            try
            {
                var (index, term) = _written;
                if (Volatile.Read(ref _applying) || index <= SnapshotIndex || term <= 0) return false;
                TakeSnapshot(index, term, storeLocked: true);
                return index == SnapshotIndex;
            }
            finally { _swap.ExitWriteLock(); }
        }
    }

    /// <summary>A backup of the store as of <paramref name="index"/>: nothing else writes between the apply and this
    /// call (the applier is the store's only writer), so the backup holds exactly the entries up to it.</summary>
    private void TakeSnapshot(long index, long term, bool storeLocked = false)
    {
        var final = Path.Combine(_snapshotRoot, BackupSnapshot.Name(index, term));
        var tmp = final + ".tmp";
        try
        {
            DeleteAny(tmp);
            Directory.CreateDirectory(tmp);
            if (!storeLocked) _swap.EnterReadLock();
            try { _store.Backup(Path.Combine(tmp, BackupSnapshot.StoreFolder)); }
            finally { if (!storeLocked) _swap.ExitReadLock(); }
            Directory.Move(tmp, final);
            _snapshot = new BackupSnapshot(final, index, term);
            _bytesSinceSnapshot = 0;
            _log.LogDebug("Snapshot at index {Index} (term {Term})", index, term);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A failed snapshot only delays log truncation; the next interval tries again.
            _log.LogWarning(e, "Snapshot at index {Index} failed", index);
            DeleteAny(tmp);
        }
    }

    private async ValueTask<long> InstallAsync(LogEntry entry, CancellationToken token)
    {
        if (Volatile.Read(ref _installing) is { IsCompleted: false } previous)
            await previous.ConfigureAwait(false); // one replacement at a time
        var tmpFile = Path.Combine(_snapshotRoot, "incoming.tmp");
        long installed;
        await using (var fs = new FileStream(tmpFile, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            var buffer = new byte[1 << 16];
            await entry.WriteToAsync(IAsyncBinaryWriter.Create(fs, buffer), token).ConfigureAwait(false);
            await fs.FlushAsync(token).ConfigureAwait(false);
            fs.Position = 0;
            var snapshot = await BackupSnapshot.UnpackAsync(fs, _snapshotRoot, token).ConfigureAwait(false);
            if (snapshot.Index != entry.Index)
                _log.LogWarning("Installed snapshot says index {Inner}, the log entry {Outer}", snapshot.Index, entry.Index);
            _log.LogInformation("Installing snapshot at index {Index} (term {Term}) from the leader", snapshot.Index, snapshot.Term);
            _snapshot = snapshot;
            installed = snapshot.Index;
            // The install is one Raft request, which DotNext cuts at its request timeout (the lower election timeout: it
            // must stay below the election timeout, or a candidate waiting on a partitioned member's vote never wins).
            // Copying the backup into place and opening it can take longer, and an install cut short was started again,
            // forever. So the request ends once the snapshot is received and unpacked (durable in the snapshot folder:
            // a restart restores the store from it), and the store is replaced right after; every read and the next
            // entry's apply wait for that first.
            Volatile.Write(ref _installing, Task.Run(() => ReplaceStoreFrom(snapshot), CancellationToken.None));
        }
        File.Delete(tmpFile);
        return installed;
    }

    /// <summary>The store replacement of the newest snapshot install, run after the install request was answered.</summary>
    private Task? _installing;

    /// <summary>Blocks until a pending store replacement is done (rethrowing its failure).</summary>
    private void WaitForInstall()
    {
        if (Volatile.Read(ref _installing) is { IsCompleted: false } installing)
            installing.GetAwaiter().GetResult();
    }

    /// <summary>Replaces the store's directory by a copy of the snapshot's backup and reopens it. Copies, not links:
    /// the reopened store appends to its newest segment, which must not be the snapshot's file.</summary>
    private void ReplaceStoreFrom(BackupSnapshot snapshot)
    {
        if (SlowStoreReplaceForTests is { } delay) Thread.Sleep(delay); // a big store on a slow disk
        _swap.EnterWriteLock();
        try
        {
            _store.Dispose();
            var source = Path.Combine(snapshot.Directory, BackupSnapshot.StoreFolder);
            var incoming = _storeDir.TrimEnd(Path.DirectorySeparatorChar) + ".restore.tmp";
            DeleteAny(incoming);
            Directory.CreateDirectory(incoming);
            foreach (var file in Directory.EnumerateFiles(source))
                File.Copy(file, Path.Combine(incoming, Path.GetFileName(file)));
            using (BitcaskStore.Open(incoming, _storeOptions)) { } // fsyncs what it opened; proves it opens
            DeleteAny(_storeDir);
            Directory.Move(incoming, _storeDir);
            _store = BitcaskStore.Open(_storeDir, _storeOptions);
            Volatile.Write(ref _applied, ReadApplied(_store));
            _written = (AppliedIndex, snapshot.Term);
            NoteLeases(_store);
        }
        finally { _swap.ExitWriteLock(); }
    }

    /// <summary>The applied index recorded in the store, and the log clock with it (16 bytes; 8 before stamps; 24 while
    /// a multi entry is partly applied: index, clock, commands of that entry applied — the entry itself is then not
    /// applied yet, the one before it is).</summary>
    private long ReadApplied(BitcaskStore store)
    {
        var b = store.Get(Command.AppliedKey);
        if (b is { Length: 16 or 24 }) _clock.Set(BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(8)));
        var index = b is { Length: >= 8 } ? BinaryPrimitives.ReadInt64LittleEndian(b) : 0;
        if (b is { Length: 24 })
        {
            _partialIndex = index;
            _partialDone = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(16));
            return index - 1;
        }
        _partialIndex = 0;
        return index;
    }

    internal static void DeleteAny(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        else if (File.Exists(path)) File.Delete(path);
    }

    public void Dispose()
    {
        try { WaitForInstall(); }
        catch (Exception e) { _log.LogWarning(e, "Store replacement from a snapshot failed"); }
        _swap.EnterWriteLock();
        try { _store.Dispose(); }
        finally { _swap.ExitWriteLock(); }
    }

    /// <summary>The store's clock: the newest stamp applied, so every node judges expiry identically at the same log
    /// index. Timers come from the system clock (the store runs no expiry timer: ExpireInBackground is off).</summary>
    private sealed class LogClock : TimeProvider
    {
        private long _ms;
        internal long Ms => Volatile.Read(ref _ms);
        internal void Advance(long stampMs) { if (stampMs > Ms) Volatile.Write(ref _ms, stampMs); }
        internal void Set(long ms) => Volatile.Write(ref _ms, ms);
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(Ms);
    }

    internal static string Describe(long index, long term) => string.Create(CultureInfo.InvariantCulture, $"{index}-{term}");
}
