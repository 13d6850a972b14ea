using System.Buffers;
using System.Reflection;
using System.Runtime.InteropServices;
using LightningDB;

namespace Bitcask.Bench.Stores;

/// <summary>
/// LMDB through LightningDB, one write transaction per put. Variants: nosync (MDB_NOSYNC: commits reach the OS, no
/// fsync: the setting comparable to bitcask Flushed), sync (LMDB's default: fsync on every commit).
/// The native liblmdb comes with the LightningDB package for linux-x64; elsewhere install it (Debian: liblmdb0).
/// </summary>
public sealed class LmdbKv : IKvStore
{
    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _db;

    public static readonly string[] Variants = ["nosync", "sync"];

    private LmdbKv(LightningEnvironment env, LightningDatabase db, string settings)
    {
        _env = env;
        _db = db;
        Settings = settings;
    }

    static LmdbKv()
    {
        // The liblmdb.so inside the LightningDB package needs glibc 2.38; Debian 12 has 2.36. When the bundled library
        // does not load, fall back to the system's (Debian package liblmdb0 installs liblmdb.so.0).
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // LightningDB set a resolver of its own: use its loading.
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (!name.Contains("lmdb", StringComparison.OrdinalIgnoreCase)) return IntPtr.Zero;
        if (NativeLibrary.TryLoad(name, assembly, path, out var handle)) return handle;
        foreach (var candidate in new[] { "liblmdb.so.0", "liblmdb.so", "/usr/lib/x86_64-linux-gnu/liblmdb.so.0", "/usr/lib/aarch64-linux-gnu/liblmdb.so.0" })
            if (NativeLibrary.TryLoad(candidate, out handle)) return handle;
        return IntPtr.Zero;
    }

    /// <summary>True when the native liblmdb loads; otherwise <paramref name="reason"/> says what is missing and how to install it.</summary>
    public static bool IsAvailable(out string reason)
    {
        // A LightningEnvironment whose constructor failed to load the native library cannot be disposed, and its finalizer
        // then throws and takes the process down: find the library before constructing one.
        if (!new[] { "lmdb", "liblmdb.so.0", "liblmdb.so", "/usr/lib/x86_64-linux-gnu/liblmdb.so.0", "/usr/lib/aarch64-linux-gnu/liblmdb.so.0" }
                .Any(name => NativeLibrary.TryLoad(name, typeof(LightningEnvironment).Assembly, null, out _)))
        {
            reason = "LMDB's native library (liblmdb) could not be loaded. Install it: Debian/Ubuntu apt-get install -y liblmdb0 " +
                     "(the copy inside the LightningDB package needs glibc 2.38 or newer).";
            return false;
        }
        var probe = Path.Combine(Path.GetTempPath(), "bitcask-bench-lmdb-probe-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var store = Open(probe, "nosync");
            reason = "";
            return true;
        }
        catch (Exception e) when (IsNativeLoadFailure(e))
        {
            reason = NativeMissingMessage(e);
            return false;
        }
        finally
        {
            try { Directory.Delete(probe, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    internal static bool IsNativeLoadFailure(Exception e) =>
        e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException
        || (e is TypeInitializationException { InnerException: { } inner } && IsNativeLoadFailure(inner));

    internal static string NativeMissingMessage(Exception e)
    {
        // The loader's message lists every path it tried; keep its first line and the lines that say why a file that exists failed.
        var lines = e.GetBaseException().Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var why = lines.Take(1).Concat(lines.Skip(1).Where(l => !l.Contains("No such file", StringComparison.Ordinal) && l != "."));
        return $"LMDB's native library (liblmdb) could not be loaded ({string.Join(" ", why)}). " +
               "Install it: Debian/Ubuntu apt-get install -y liblmdb0 (the copy inside the LightningDB package needs glibc 2.38 or newer).";
    }

    public static LmdbKv Open(string directory, string variant)
    {
        var (flags, settings) = variant switch
        {
            "nosync" => (EnvironmentOpenFlags.NoSync, "MDB_NOSYNC (commit = write syscalls, no fsync)"),
            "sync" => (EnvironmentOpenFlags.None, "default: fsync on every commit"),
            _ => throw new ArgumentException($"Unknown lmdb variant '{variant}'; expected one of {string.Join(", ", Variants)}.", nameof(variant)),
        };
        Directory.CreateDirectory(directory);
        var env = new LightningEnvironment(directory, new EnvironmentConfiguration { MapSize = 64L << 30, MaxReaders = 256 });
        try
        {
            env.Open(flags);
            LightningDatabase db;
            using (var tx = env.BeginTransaction())
            {
                db = tx.OpenDatabase(configuration: new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
                Check(tx.Commit(), "commit of the database creation");
            }
            return new LmdbKv(env, db, settings);
        }
        catch
        {
            env.Dispose();
            throw;
        }
    }

    private static void Check(MDBResultCode code, string what)
    {
        if (code != MDBResultCode.Success) throw new InvalidOperationException($"LMDB {what} failed: {code}");
    }

    public string Name => "lmdb";
    public string Settings { get; }

    public IKvSession NewSession() => new Session(this);

    public void Sync() => Check(_env.Flush(force: true), "flush");

    public bool TryCompact(out string note)
    {
        note = "LMDB reuses freed pages itself; no compaction to call";
        return false;
    }

    public void Dispose()
    {
        _db.Dispose();
        _env.Dispose();
    }

    private sealed class Session(LmdbKv owner) : IKvSession
    {
        private LightningTransaction? _read;

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            using var tx = owner._env.BeginTransaction();
            Check(tx.Put(owner._db, key, value), "put");
            Check(tx.Commit(), "commit");
        }

        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value)
        {
            // One read-only transaction per thread, reset and renewed around each get (LMDB's recommended pattern).
            if (_read is null) _read = owner._env.BeginTransaction(TransactionBeginFlags.ReadOnly);
            else Check(_read.Renew(), "renew of the read transaction");
            try
            {
                var (code, _, data) = _read.Get(owner._db, key);
                if (code == MDBResultCode.NotFound) return false;
                Check(code, "get");
                value.Write(data.AsSpan());
                return true;
            }
            finally
            {
                _read.Reset();
            }
        }

        public void Dispose() => _read?.Dispose();
    }
}
