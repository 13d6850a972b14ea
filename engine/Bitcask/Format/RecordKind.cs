namespace Bitcask.Format;

/// <summary>The kind byte at offset 4 of every record (FORMAT.md, "Record").</summary>
internal enum RecordKind : byte
{
    /// <summary>Never written; a zero here means the bytes are not a record (pre-allocated or zero-filled tail).</summary>
    None = 0,
    Put = 1,
    Tombstone = 2,
    /// <summary>An atomic batch: the value holds complete nested Put/Tombstone records.</summary>
    Batch = 3,
    /// <summary>Format version 2: written and fsynced by <c>Sync()</c> and close after an fdatasync; carries that fsynced
    /// length in its durable-length field, so recovery can prove the bytes before it were durable (FORMAT.md §2.2).
    /// Holds no key, no value and no sequence; never nested in a batch.</summary>
    SyncMarker = 4,
}

/// <summary>The flags byte at offset 5 of every record. Which bits a record may carry depends on its kind and on its
/// segment's format version (<see cref="RecordLimits"/>); any other bit makes the record invalid.</summary>
[Flags]
internal enum RecordFlags : byte
{
    None = 0,
    /// <summary>Put: the stored value is <c>u32 raw length</c> followed by one LZ4 block.</summary>
    Lz4 = 1,
    /// <summary>Put (version 2): an 8-byte trailer after the value holds the key's create revision.</summary>
    CreateRevision = 2,
    /// <summary>Put (version 2): an 8-byte trailer after the value (after the create revision) holds the lease id.</summary>
    Lease = 4,
    /// <summary>Tombstone (version 2): written because the key's time to live ran out (a watcher sees an Expire event).</summary>
    Expired = 8,
    /// <summary>Put or tombstone (version 2): an 8-byte trailer (last) holds the key's version before this write (0: absent).</summary>
    PreviousVersion = 16,
    /// <summary>Every bit some record kind of some version may carry (a cheap first filter when searching for records).</summary>
    Known = Lz4 | CreateRevision | Lease | Expired | PreviousVersion,
}
