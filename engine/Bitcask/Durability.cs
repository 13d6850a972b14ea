namespace Bitcask;

/// <summary>When a write is acknowledged (returns to the caller). See the durability table in README.md.</summary>
public enum Durability
{
    /// <summary>A write returns once it is in the engine's buffer. The buffer reaches the OS when full, on
    /// <see cref="BitcaskStore.Sync"/>, and at least every <see cref="BitcaskOptions.SyncInterval"/> (100 ms when unset).
    /// A killed process may lose the last moments of writes; never anything older, never a hole.</summary>
    Buffered,
    /// <summary>A write returns once the OS has it (one write system call per group of writers): it survives kill -9 of the
    /// process but not power loss. With <see cref="BitcaskOptions.SyncInterval"/> set, a background fdatasync runs at that interval.</summary>
    Flushed,
    /// <summary>A write returns only after fdatasync covered it: it survives power loss. Concurrent writers share one fdatasync.</summary>
    Synced,
}
