using Bitcask.Storage;

namespace Bitcask.CrashTests.Infrastructure;

/// <summary>The file-system operations <see cref="FaultFileSystem"/> records and numbers (reads are not numbered).</summary>
internal enum FsOpKind { CreateDirectory, Create, Write, Sync, Truncate, Rename, Delete, SyncDirectory, Link }

/// <summary>One recorded operation. <see cref="Index"/> is its 0-based number in the file system's history.</summary>
internal readonly record struct FsOp(int Index, FsOpKind Kind, string Path, long Offset, long Length, string? Destination)
{
    public string Name => System.IO.Path.GetFileName(Path);
    public override string ToString() => Kind switch
    {
        FsOpKind.Write => $"#{Index} write {Name} @{Offset} +{Length}",
        FsOpKind.Truncate => $"#{Index} truncate {Name} to {Length}",
        FsOpKind.Rename => $"#{Index} rename {Name} -> {System.IO.Path.GetFileName(Destination)}",
        FsOpKind.Link => $"#{Index} link {Name} -> {System.IO.Path.GetFileName(Destination)}",
        _ => $"#{Index} {Kind} {Name}",
    };
}

/// <summary>What a power loss (or process kill) leaves of the bytes and names that were not yet made durable.</summary>
public enum PowerLoss
{
    /// <summary>LevelDB DropUnsyncedFileData: every file reverts to its content as of its last fsync.</summary>
    DropUnsynced,
    /// <summary>RocksDB DropRandomUnsyncedFileData: per file, the unsynced writes land in order up to a random point,
    /// the write at that point only as a random prefix (a torn write), later ones not at all.</summary>
    TornPrefix,
    /// <summary>SQLite "file grows with garbage": per file, unsynced writes land up to a random point; the later ones
    /// extend the file but their bytes are garbage (random bytes or zeros).</summary>
    GarbageTail,
    /// <summary>SQLite test6.c: each unsynced write independently lands, is dropped, or lands as sector garbage.</summary>
    RandomSubset,
    /// <summary>kill -9 of the process: the OS keeps every write and every directory change.</summary>
    ProcessKill,
}

/// <summary>What a power loss leaves of the creates, renames and deletes in a directory since its last directory fsync.</summary>
public enum DirectoryLoss
{
    /// <summary>Every change since the directory's last fsync is undone (created files vanish, renamed files revert,
    /// deleted files reappear).</summary>
    RevertAll,
    /// <summary>The changes since the last directory fsync land in issue order up to a random point (an ordered
    /// metadata journal, e.g. ext4 data=ordered).</summary>
    RandomPrefix,
    /// <summary>Each change since the last directory fsync independently lands or not (ALICE: directory operations may
    /// be persisted out of order); a change lands only on the file it named, so a rename or delete of a file whose create
    /// was lost does nothing.</summary>
    RandomSubset,
}

/// <summary>A simulated crash: thrown by every mutating operation once the file system has "lost power".</summary>
internal sealed class SimulatedCrashException(string message) : IOException(message);

/// <summary>An injected failure: which operations (by kind and optional filter), from which matching occurrence (1-based),
/// once or persistently, with which errno-like HResult.</summary>
internal sealed class FaultRule
{
    public required FsOpKind Kind { get; init; }
    public int Nth { get; init; } = 1;
    public bool Persistent { get; init; }
    public int HResult { get; init; }
    /// <summary>For fsync faults: the unsynced data is discarded as the kernel does ("pages marked clean"), so a later fsync
    /// succeeds without having written it (PostgreSQL fsyncgate).</summary>
    public bool FsyncGate { get; init; }
    public Func<FsOp, bool>? Where { get; init; }
    internal int Seen;
    public int Fired { get; internal set; }
    public FsOp? LastFired { get; internal set; }

    public static FaultRule Enospc(FsOpKind kind, int nth, bool persistent = false, Func<FsOp, bool>? where = null) =>
        new() { Kind = kind, Nth = nth, Persistent = persistent, HResult = 28, Where = where };

    public static FaultRule Eio(FsOpKind kind, int nth, bool persistent = false, bool fsyncGate = false, Func<FsOp, bool>? where = null) =>
        new() { Kind = kind, Nth = nth, Persistent = persistent, HResult = 5, FsyncGate = fsyncGate, Where = where };
}

/// <summary>
/// In-memory <see cref="IStorageFileSystem"/> for crash tests (../shared/RELIABILITY.md §4). It keeps, per file, the current bytes
/// (what reads see) and the durable bytes (as of its last fsync, plus the list of writes since), and per directory the
/// durable entries (names as of its last directory fsync). <see cref="Crash"/> builds the disk a power loss leaves.
/// Every mutating operation is numbered; <see cref="CrashAtOperation"/> makes operation k and every later one throw
/// <see cref="SimulatedCrashException"/> (operation k does not happen). Thread-safe (one lock).
/// </summary>
internal sealed class FaultFileSystem : IStorageFileSystem
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Node> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, Node>> _durableEntries = new(StringComparer.Ordinal);
    /// <summary>Per directory, the entry changes since its last directory fsync, in issue order.</summary>
    private readonly Dictionary<string, List<DirChange>> _pendingEntries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);
    private readonly HashSet<string> _locks = new(StringComparer.Ordinal);
    private readonly List<FsOp> _log = [];
    private int _nextOp;
    private bool _crashed;

    /// <summary>Operation index at which the simulated power cut happens (that operation does not happen).</summary>
    public int? CrashAtOperation { get; set; }
    /// <summary>Called before each numbered operation (inside the file system's lock); may throw to fail it.</summary>
    public Action<FsOp>? BeforeOperation { get; set; }
    /// <summary>Mutation switch (test-only): when it returns true for a Sync or SyncDirectory, that call does nothing
    /// but report success — a build that skips that safety step.</summary>
    public Func<FsOp, bool>? SkipSafetyStep { get; set; }
    /// <summary>Injected failures, checked in order.</summary>
    public List<FaultRule> Faults { get; } = [];
    /// <summary>Reads of a file whose path and offset match fail with EIO.</summary>
    public Func<string, long, bool>? ReadFault { get; set; }
    /// <summary>Opening an existing file whose path matches fails with EMFILE (HResult 24, too many open files).</summary>
    public Func<string, bool>? OpenFault { get; set; }
    /// <summary>Mapping a file whose path matches fails with ENOMEM (HResult 12, as mmap past vm.max_map_count does).
    /// Mappings that do not fail are still null: the engine reads through <see cref="IStorageFile.Read"/>.</summary>
    public Func<string, bool>? MapFault { get; set; }
    /// <summary>How <see cref="Crash"/> treats directory changes not yet made durable by a directory fsync.</summary>
    public DirectoryLoss DirectoryLoss { get; set; } = DirectoryLoss.RevertAll;
    public bool HasCrashed { get { lock (_gate) return _crashed; } }
    public int OperationCount { get { lock (_gate) return _nextOp; } }
    public IReadOnlyList<FsOp> History { get { lock (_gate) return _log.ToArray(); } }

    public FaultFileSystem() { }

    // ------------------------------------------------------------------ IStorageFileSystem

    public bool DirectoryExists(string path) { lock (_gate) return _directories.Contains(Norm(path)); }
    public bool FileExists(string path) { lock (_gate) return _files.ContainsKey(path); }

    public void CreateDirectory(string path)
    {
        lock (_gate)
        {
            path = Norm(path);
            Op(FsOpKind.CreateDirectory, path);
            // Directories are modelled as durable at once (the engine fsyncs the parent right after creating one).
            for (var p = path; !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p)) _directories.Add(p);
        }
    }

    public IReadOnlyList<string> ListFiles(string directory)
    {
        lock (_gate)
        {
            directory = Norm(directory);
            if (!_directories.Contains(directory)) throw new DirectoryNotFoundException($"no directory '{directory}'");
            return _files.Keys.Where(p => Path.GetDirectoryName(p) == directory).Select(p => Path.GetFileName(p)!).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        }
    }

    public IStorageFile OpenFile(string path, StorageOpenMode mode)
    {
        lock (_gate)
        {
            var dir = Path.GetDirectoryName(path)!;
            if (!_directories.Contains(dir)) throw new DirectoryNotFoundException($"no directory '{dir}'");
            if (mode == StorageOpenMode.CreateNew)
            {
                if (_files.ContainsKey(path)) throw new IOException($"The file '{path}' already exists.");
                ThrowIfFault(Op(FsOpKind.Create, path));
                var node = new Node();
                _files[path] = node;
                Pending(dir).Add(new DirChange(DirChangeKind.Create, Path.GetFileName(path), null, node));
                return new FaultFile(this, path, node, writable: true);
            }
            if (!_files.TryGetValue(path, out var existing)) throw new FileNotFoundException($"Could not find file '{path}'.", path);
            if (OpenFault?.Invoke(path) == true) throw new IOException($"Too many open files : '{path}' (injected)", 24);
            return new FaultFile(this, path, existing, writable: mode == StorageOpenMode.ReadWrite);
        }
    }

    public void Rename(string source, string destination)
    {
        lock (_gate)
        {
            if (!_files.TryGetValue(source, out var node)) throw new FileNotFoundException($"Could not find file '{source}'.", source);
            ThrowIfFault(Op(FsOpKind.Rename, source, destination: destination));
            _files.Remove(source);
            _files[destination] = node;
            string srcDir = Path.GetDirectoryName(source)!, dstDir = Path.GetDirectoryName(destination)!;
            if (srcDir == dstDir) Pending(srcDir).Add(new DirChange(DirChangeKind.Rename, Path.GetFileName(source), Path.GetFileName(destination), node));
            else
            {
                Pending(srcDir).Add(new DirChange(DirChangeKind.Delete, Path.GetFileName(source), null, node));
                Pending(dstDir).Add(new DirChange(DirChangeKind.Create, Path.GetFileName(destination), null, node));
            }
        }
    }

    public void Delete(string path)
    {
        lock (_gate)
        {
            ThrowIfFault(Op(FsOpKind.Delete, path));
            if (_files.Remove(path, out var node))
                Pending(Path.GetDirectoryName(path)!).Add(new DirChange(DirChangeKind.Delete, Path.GetFileName(path), null, node));
        }
    }

    /// <summary>When true, <see cref="TryHardLink"/> refuses (as a file system without hard links does) and callers copy.</summary>
    public bool RefuseLinks { get; set; }

    /// <summary>A hard link: <paramref name="target"/> becomes a second name of the same file (same bytes, durable and
    /// pending, from then on shared); like a create, the name is durable only after a directory fsync.</summary>
    public bool TryHardLink(string source, string target)
    {
        lock (_gate)
        {
            if (RefuseLinks || !_files.TryGetValue(source, out var node)) return false;
            var dir = Path.GetDirectoryName(target)!;
            if (!_directories.Contains(dir)) throw new DirectoryNotFoundException($"no directory '{dir}'");
            if (_files.ContainsKey(target)) throw new IOException($"The file '{target}' already exists.");
            ThrowIfFault(Op(FsOpKind.Link, source, destination: target));
            _files[target] = node;
            Pending(dir).Add(new DirChange(DirChangeKind.Create, Path.GetFileName(target), null, node));
            return true;
        }
    }

    public void SyncDirectory(string directory)
    {
        lock (_gate)
        {
            directory = Norm(directory);
            var op = Op(FsOpKind.SyncDirectory, directory);
            ThrowIfFault(op);
            if (SkipSafetyStep?.Invoke(op) == true) return;
            _durableEntries[directory] = _files.Where(kv => Path.GetDirectoryName(kv.Key) == directory)
                .ToDictionary(kv => Path.GetFileName(kv.Key)!, kv => kv.Value, StringComparer.Ordinal);
            Pending(directory).Clear();
        }
    }

    public IDisposable Lock(string lockPath)
    {
        lock (_gate)
        {
            if (!_locks.Add(lockPath)) throw new StoreLockedException(Path.GetDirectoryName(lockPath) ?? lockPath, lockPath);
            return new LockHandle(this, lockPath);
        }
    }

    private sealed class LockHandle(FaultFileSystem fs, string path) : IDisposable
    {
        private int _disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            lock (fs._gate) fs._locks.Remove(path);
        }
    }

    // ------------------------------------------------------------------ operations, faults

    private enum DirChangeKind { Create, Rename, Delete }

    /// <summary>One directory entry change: Name (and Destination for a rename) name <see cref="Node"/>.</summary>
    private sealed record DirChange(DirChangeKind Kind, string Name, string? Destination, Node Node);

    private List<DirChange> Pending(string directory)
    {
        directory = Norm(directory);
        if (!_pendingEntries.TryGetValue(directory, out var list)) _pendingEntries[directory] = list = [];
        return list;
    }

    /// <summary>Pending directory changes (for tests of the model itself).</summary>
    public int PendingDirectoryChanges(string directory) { lock (_gate) return Pending(directory).Count; }

    private static string Norm(string path) => path.TrimEnd('/') is { Length: > 0 } p ? p : "/";

    private FsOp Op(FsOpKind kind, string path, long offset = 0, long length = 0, string? destination = null)
    {
        if (_crashed) throw new SimulatedCrashException($"simulated power loss (operation {kind} {Path.GetFileName(path)} after the crash)");
        var op = new FsOp(_nextOp, kind, path, offset, length, destination);
        if (CrashAtOperation == op.Index)
        {
            _crashed = true;
            throw new SimulatedCrashException($"simulated power loss at operation {op}");
        }
        _nextOp++;
        _log.Add(op);
        BeforeOperation?.Invoke(op);
        return op;
    }

    private FaultRule? MatchFault(FsOp op)
    {
        foreach (var rule in Faults)
        {
            if (rule.Kind != op.Kind || (rule.Where is { } where && !where(op))) continue;
            rule.Seen++;
            if (rule.Seen == rule.Nth || (rule.Persistent && rule.Seen > rule.Nth))
            {
                rule.Fired++;
                rule.LastFired = op;
                return rule;
            }
        }
        return null;
    }

    private void ThrowIfFault(FsOp op)
    {
        if (MatchFault(op) is { } rule) throw Fault(rule, op);
    }

    private static IOException Fault(FaultRule rule, FsOp op) => rule.HResult switch
    {
        28 => new IOException($"No space left on device : '{op.Path}' (injected at {op})", 28),
        _ => new IOException($"Input/output error : '{op.Path}' (injected at {op})", rule.HResult),
    };

    private void FileWrite(Node node, string path, long offset, ReadOnlySpan<byte> source)
    {
        lock (_gate)
        {
            var op = Op(FsOpKind.Write, path, offset, source.Length);
            if (MatchFault(op) is { } rule)
            {
                // A failing write(2) may have written a prefix (short write, then ENOSPC).
                var partial = source[..(source.Length / 2)];
                node.Write(offset, partial);
                throw Fault(rule, op);
            }
            node.Write(offset, source);
        }
    }

    private void FileSync(Node node, string path)
    {
        lock (_gate)
        {
            var op = Op(FsOpKind.Sync, path);
            if (MatchFault(op) is { } rule)
            {
                if (rule.FsyncGate) node.Pending.Clear(); // dirty pages marked clean: never written, yet still visible to reads
                throw Fault(rule, op);
            }
            if (SkipSafetyStep?.Invoke(op) == true) return;
            node.MakeDurable();
        }
    }

    private void FileTruncate(Node node, string path, long length)
    {
        lock (_gate)
        {
            var op = Op(FsOpKind.Truncate, path, length: length);
            if (MatchFault(op) is { } rule) throw Fault(rule, op);
            node.Truncate(length);
        }
    }

    private int FileRead(Node node, string path, long offset, Span<byte> destination)
    {
        lock (_gate)
        {
            if (ReadFault?.Invoke(path, offset) == true)
                throw new IOException($"Input/output error : '{path}' (injected read at {offset})", 5);
            if (offset >= node.Length) return 0;
            var n = (int)Math.Min(destination.Length, node.Length - offset);
            node.Data.AsSpan((int)offset, n).CopyTo(destination);
            return n;
        }
    }

    // ------------------------------------------------------------------ crash

    /// <summary>The disk after a power loss (or a process kill) at this moment: a new file system holding what survives.
    /// Directory changes not followed by a directory fsync are undone (all, or all but a random prefix or subset, as
    /// <see cref="DirectoryLoss"/> says) unless <paramref name="mode"/> is <see cref="PowerLoss.ProcessKill"/> (or
    /// <paramref name="revertDirectories"/> is false).</summary>
    public FaultFileSystem Crash(PowerLoss mode, Random rng, bool? revertDirectories = null)
    {
        lock (_gate)
        {
            var revert = revertDirectories ?? mode != PowerLoss.ProcessKill;
            var result = new FaultFileSystem { DirectoryLoss = DirectoryLoss };
            foreach (var d in _directories) result._directories.Add(d);
            var images = new Dictionary<Node, Node>(ReferenceEqualityComparer.Instance);
            Node Image(Node n) => images.TryGetValue(n, out var img) ? img : images[n] = n.AfterCrash(mode, rng);

            if (revert)
            {
                foreach (var dir in _durableEntries.Keys.Union(_pendingEntries.Keys).OrderBy(d => d, StringComparer.Ordinal).ToList())
                {
                    var entries = _durableEntries.TryGetValue(dir, out var durable)
                        ? new Dictionary<string, Node>(durable, StringComparer.Ordinal) : new Dictionary<string, Node>(StringComparer.Ordinal);
                    var pending = _pendingEntries.TryGetValue(dir, out var p) ? p : [];
                    var keep = DirectoryLoss switch
                    {
                        DirectoryLoss.RandomPrefix when pending.Count > 0 => rng.Next(0, pending.Count + 1),
                        _ => 0,
                    };
                    for (var i = 0; i < pending.Count; i++)
                    {
                        var lands = DirectoryLoss switch
                        {
                            DirectoryLoss.RandomPrefix => i < keep,
                            DirectoryLoss.RandomSubset => rng.Next(2) == 0,
                            _ => false,
                        };
                        if (lands) ApplyChange(entries, pending[i]);
                    }
                    foreach (var (name, node) in entries.OrderBy(kv => kv.Key, StringComparer.Ordinal)) result._files[Path.Combine(dir, name)] = Image(node);
                }
                foreach (var (dir, names) in result._files.Keys.GroupBy(p => Path.GetDirectoryName(p)!).Select(g => (g.Key, g)))
                    result._durableEntries[dir] = names.ToDictionary(p => Path.GetFileName(p)!, p => result._files[p], StringComparer.Ordinal);
            }
            else
            {
                // The machine keeps running: what was not durable yet stays not durable (a later power loss can still drop it).
                foreach (var (path, node) in _files.OrderBy(kv => kv.Key, StringComparer.Ordinal)) result._files[path] = Image(node);
                foreach (var (dir, entries) in _durableEntries)
                    result._durableEntries[dir] = entries.ToDictionary(kv => kv.Key, kv => Image(kv.Value), StringComparer.Ordinal);
                foreach (var (dir, changes) in _pendingEntries)
                    result._pendingEntries[dir] = changes.Select(c => c with { Node = Image(c.Node) }).ToList();
            }
            return result;
        }
    }

    /// <summary>Applies one directory change to a directory's entries, only to the file it named.</summary>
    private static void ApplyChange(Dictionary<string, Node> entries, DirChange change)
    {
        switch (change.Kind)
        {
            case DirChangeKind.Create:
                entries[change.Name] = change.Node;
                break;
            case DirChangeKind.Rename:
                if (entries.TryGetValue(change.Name, out var src) && ReferenceEquals(src, change.Node))
                {
                    entries.Remove(change.Name);
                    entries[change.Destination!] = change.Node;
                }
                break;
            case DirChangeKind.Delete:
                if (entries.TryGetValue(change.Name, out var victim) && ReferenceEquals(victim, change.Node)) entries.Remove(change.Name);
                break;
        }
    }

    /// <summary>A copy of the current state with everything durable (a clean shutdown of the machine).</summary>
    public FaultFileSystem Clone()
    {
        var copy = Crash(PowerLoss.ProcessKill, new Random(0), revertDirectories: false);
        lock (copy._gate)
        {
            foreach (var n in copy._files.Values) n.MakeDurable();
            copy._pendingEntries.Clear();
            foreach (var dir in copy._directories.ToArray())
                copy._durableEntries[dir] = copy._files.Where(kv => Path.GetDirectoryName(kv.Key) == dir)
                    .ToDictionary(kv => Path.GetFileName(kv.Key)!, kv => kv.Value, StringComparer.Ordinal);
        }
        return copy;
    }

    // ------------------------------------------------------------------ direct access for damage tests

    public IReadOnlyList<string> Files { get { lock (_gate) return _files.Keys.OrderBy(p => p, StringComparer.Ordinal).ToArray(); } }

    public byte[] ReadAllBytes(string path)
    {
        lock (_gate) return _files[path].Data.AsSpan(0, (int)_files[path].Length).ToArray();
    }

    /// <summary>Replaces a file's content, durably, as a disk edit behind the engine's back.</summary>
    public void WriteAllBytes(string path, byte[] bytes)
    {
        lock (_gate)
        {
            if (!_files.TryGetValue(path, out var node))
            {
                node = _files[path] = new Node();
                var dir = Path.GetDirectoryName(path)!;
                if (_durableEntries.TryGetValue(dir, out var entries)) entries[Path.GetFileName(path)!] = node;
            }
            node.Truncate(0);
            node.Write(0, bytes);
            node.MakeDurable();
        }
    }

    public void RemoveFile(string path)
    {
        lock (_gate)
        {
            _files.Remove(path);
            if (_durableEntries.TryGetValue(Path.GetDirectoryName(path)!, out var entries)) entries.Remove(Path.GetFileName(path)!);
        }
    }

    public int HeldLocks { get { lock (_gate) return _locks.Count; } }

    // ------------------------------------------------------------------ model of one file

    private sealed class Node
    {
        public byte[] Data = new byte[256];
        public long Length;
        public byte[] Durable = [];
        /// <summary>Writes (Bytes != null) and truncations (Bytes == null, TruncateTo) since the last fsync, in order.</summary>
        public readonly List<(long Offset, byte[]? Bytes, long TruncateTo)> Pending = [];

        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            var end = offset + source.Length;
            if (end > Data.Length) Array.Resize(ref Data, (int)Math.Max(end, Data.Length * 2L));
            if (offset > Length) Data.AsSpan((int)Length, (int)(offset - Length)).Clear();
            source.CopyTo(Data.AsSpan((int)offset));
            Length = Math.Max(Length, end);
            Pending.Add((offset, source.ToArray(), 0));
        }

        public void Truncate(long length)
        {
            if (length > Data.Length) Array.Resize(ref Data, (int)length);
            if (length > Length) Data.AsSpan((int)Length, (int)(length - Length)).Clear();
            Length = length;
            Pending.Add((0, null, length));
        }

        public void MakeDurable()
        {
            Durable = Apply(Durable, Pending.Count, _ => Landing.Lands, null);
            Pending.Clear();
        }

        private enum Landing { Lands, Dropped, Garbage, Torn }

        private byte[] Apply(byte[] start, int count, Func<int, Landing> landing, Random? rng)
        {
            var buffer = new List<byte>(start);
            for (var i = 0; i < count; i++)
            {
                var (offset, bytes, truncateTo) = Pending[i];
                var how = landing(i);
                if (how == Landing.Dropped) continue;
                if (bytes is null)
                {
                    if (truncateTo < buffer.Count) buffer.RemoveRange((int)truncateTo, buffer.Count - (int)truncateTo);
                    else while (buffer.Count < truncateTo) buffer.Add(0);
                    continue;
                }
                var data = bytes;
                if (how == Landing.Torn) data = bytes[..rng!.Next(0, bytes.Length)];
                else if (how == Landing.Garbage)
                {
                    data = new byte[bytes.Length];
                    if (rng!.Next(2) == 0) rng.NextBytes(data); // else zeros
                }
                while (buffer.Count < offset + data.Length) buffer.Add(0);
                for (var j = 0; j < data.Length; j++) buffer[(int)offset + j] = data[j];
            }
            return buffer.ToArray();
        }

        public Node AfterCrash(PowerLoss mode, Random rng)
        {
            if (mode == PowerLoss.ProcessKill)
            {
                var alive = new Node { Data = Data.AsSpan(0, (int)Length).ToArray(), Length = Length, Durable = Durable };
                if (alive.Data.Length == 0) alive.Data = new byte[256];
                alive.Pending.AddRange(Pending);
                return alive;
            }
            var cut = Pending.Count == 0 ? 0 : rng.Next(0, Pending.Count + 1);
            var bytes = mode switch
            {
                PowerLoss.ProcessKill => Data.AsSpan(0, (int)Length).ToArray(),
                PowerLoss.DropUnsynced => Durable,
                PowerLoss.TornPrefix => Apply(Durable, Pending.Count, i => i < cut ? Landing.Lands : i == cut ? Landing.Torn : Landing.Dropped, rng),
                PowerLoss.GarbageTail => Apply(Durable, Pending.Count, i => i < cut ? Landing.Lands : Landing.Garbage, rng),
                PowerLoss.RandomSubset => Apply(Durable, Pending.Count, _ => (Landing)rng.Next(0, 3), rng),
                _ => throw new ArgumentOutOfRangeException(nameof(mode)),
            };
            var node = new Node();
            node.Write(0, bytes);
            node.MakeDurable();
            return node;
        }
    }

    private sealed class FaultFile(FaultFileSystem fs, string path, Node node, bool writable) : IStorageFile
    {
        public string Path { get; } = path;
        public long Length { get { lock (fs._gate) return node.Length; } }
        public int Read(long offset, Span<byte> destination) => fs.FileRead(node, Path, offset, destination);
        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            if (!writable) throw new UnauthorizedAccessException($"'{Path}' is open read-only.");
            fs.FileWrite(node, Path, offset, source);
        }
        public void Sync() => fs.FileSync(node, Path);
        public void Truncate(long length)
        {
            if (!writable) throw new UnauthorizedAccessException($"'{Path}' is open read-only.");
            fs.FileTruncate(node, Path, length);
        }
        public FileMapping? Map(long capacity)
        {
            if (fs.MapFault?.Invoke(Path) == true) throw new IOException($"mmap of '{Path}' failed: Cannot allocate memory (injected)", 12);
            return null;
        }
        public void Dispose() { }
    }
}
