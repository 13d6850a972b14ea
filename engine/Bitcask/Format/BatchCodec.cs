namespace Bitcask.Format;

/// <summary>
/// Encodes a <see cref="WriteBatch"/> as one batch record (FORMAT.md §2.2): a header of kind
/// <see cref="RecordKind.Batch"/> whose payload is the batch's puts and tombstones, each a whole record, so the batch
/// lands or is cut as one. The write path stamps sequence numbers and CRCs later (<see cref="RecordCodec.Seal"/>).
/// <para>Thread-safety: stateless; the batch must not change while it is encoded.</para>
/// </summary>
internal static class BatchCodec
{
    /// <summary>Checks every operation against the key and value limits and returns an upper bound on the encoded size.
    /// Throws <see cref="ArgumentException"/> (parameter "batch") for an operation over a limit, or a batch that cannot
    /// fit in one segment (<paramref name="maxRecordBytes"/>).</summary>
    public static int MaxEncodedSize(WriteBatch batch, BitcaskOptions options, int maxRecordBytes)
    {
        long bound = RecordCodec.HeaderSize;
        for (var i = 0; i < batch.Ops.Count; i++)
        {
            var op = batch.Ops[i];
            if (op.KeyLength > options.MaxKeyBytes)
                throw new ArgumentException($"Batch operation {i}: key is {op.KeyLength} bytes; the limit is MaxKeyBytes = {options.MaxKeyBytes}.", nameof(batch));
            Leases.ThrowIfReserved(batch.Bytes(op.KeyStart, op.KeyLength), nameof(batch));
            if (op.ValueLength > options.MaxValueBytes)
                throw new ArgumentException($"Batch operation {i}: value is {op.ValueLength} bytes; the limit is MaxValueBytes = {options.MaxValueBytes}.", nameof(batch));
            bound += RecordCodec.MaxEncodedSize(op.KeyLength, op.ValueLength, options.CompressionThreshold);
        }
        if (bound > maxRecordBytes)
        {
            // The exact size only matters near the limit; compression may still bring it under.
            var exact = RecordCodec.HeaderSize + batch.Ops.Sum(op => (long)RecordCodec.HeaderSize + op.KeyLength + op.ValueLength);
            if (exact > maxRecordBytes || options.CompressionThreshold == 0)
                throw new ArgumentException($"The batch encodes to about {Math.Min(bound, exact)} bytes; a batch must fit in one segment (the limit is MaxSegmentBytes - {SegmentHeader.FixedSize} = {maxRecordBytes} bytes). Split it.", nameof(batch));
        }
        return (int)Math.Min(bound, Array.MaxLength);
    }

    /// <summary>
    /// Encodes <paramref name="batch"/> into <paramref name="destination"/> (<see cref="MaxEncodedSize"/> bytes) and returns
    /// the length. A put's expiry comes from <paramref name="expiryAfter"/>(now, time to live) or, for an absolute expiry,
    /// <paramref name="checkedExpiry"/>(now, expiry in Unix milliseconds), which may throw to reject it.
    /// </summary>
    public static int Encode(WriteBatch batch, Span<byte> destination, long now, int compressionThreshold, int maxRecordBytes,
        Func<long, TimeSpan, long> expiryAfter, Func<long, long, long> checkedExpiry)
    {
        var position = RecordCodec.HeaderSize;
        for (var i = 0; i < batch.Ops.Count; i++)
        {
            var op = batch.Ops[i];
            var key = batch.Bytes(op.KeyStart, op.KeyLength);
            position += op.Kind == WriteBatch.OpKind.Delete
                ? RecordCodec.Encode(destination[position..], RecordKind.Tombstone, key, default, 0, 0, RecordFlags.PreviousVersion, 0)
                : RecordCodec.Encode(destination[position..], RecordKind.Put, key, batch.Bytes(op.ValueStart, op.ValueLength), op.Kind switch
                {
                    WriteBatch.OpKind.PutWithTtl => expiryAfter(now, op.TimeToLive),
                    WriteBatch.OpKind.PutWithExpiry => checkedExpiry(now, op.ExpiresAt),
                    _ => 0,
                }, compressionThreshold, RecordFlags.CreateRevision | RecordFlags.PreviousVersion | (op.LeaseId != 0 ? RecordFlags.Lease : RecordFlags.None), op.LeaseId);
        }
        if (position > maxRecordBytes)
            throw new ArgumentException($"The batch encodes to {position} bytes; a batch must fit in one segment (the limit is {maxRecordBytes} bytes). Split it.", nameof(batch));
        RecordCodec.WriteHeader(destination, RecordKind.Batch, RecordFlags.None, 0, 0, position - RecordCodec.HeaderSize);
        return position;
    }
}
