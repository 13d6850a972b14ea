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

/// <summary>The flags byte at offset 5 of every record.</summary>
[Flags]
internal enum RecordFlags : byte
{
    None = 0,
    /// <summary>The stored value is <c>u32 raw length</c> followed by one LZ4 block.</summary>
    Lz4 = 1,
    /// <summary>Every bit a reader of this version understands; any other bit makes the record invalid.</summary>
    Known = Lz4,
}
