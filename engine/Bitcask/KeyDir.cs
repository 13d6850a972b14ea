using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bitcask;

/// <summary>Where a key's newest record lives: segment, byte offset of the record, record length.</summary>
internal readonly record struct KeyLocation(uint SegmentId, uint Offset, uint Length);

/// <summary>
/// The in-memory index from key to the location of its newest record: a hash table built for memory per key, not a
/// Dictionary. 256 stripes, each a chained hash table over three arrays (bucket heads, 24-byte entries, one byte arena
/// holding the keys), so a key costs its length plus about 30 bytes. Each bucket also carries an 8-bit filter of its
/// chain's tags, so a lookup of an absent key usually reads one bucket and nothing else. Keys with a TTL add 8 bytes (a parallel array
/// allocated only in stripes that hold one).
/// <para>Thread-safety: every method is safe to call concurrently. Each stripe has its own lock, held only for the
/// in-memory operation, never across I/O; readers of different stripes never contend.</para>
/// </summary>
internal sealed class KeyDir
{
    private const int StripeBits = 8;
    private const int StripeCount = 1 << StripeBits;
    private readonly Stripe[] _stripes = new Stripe[StripeCount];

    public KeyDir()
    {
        for (var i = 0; i < StripeCount; i++) _stripes[i] = new Stripe();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash(ReadOnlySpan<byte> key) => XxHash3.HashToUInt64(key);

    private Stripe StripeOf(ulong hash) => _stripes[(int)(hash >> (64 - StripeBits))];

    public bool TryGet(ReadOnlySpan<byte> key, out KeyLocation location, out long expiresAt)
    {
        var hash = Hash(key);
        var stripe = StripeOf(hash);
        // Optimistic read: no lock, validated by the stripe's version (odd while a writer is changing it).
        for (var attempt = 0; attempt < 16; attempt++)
        {
            var version = Volatile.Read(ref stripe.Version);
            if ((version & 1) == 0)
            {
                var found = stripe.TryFindOptimistic(key, hash, out location, out expiresAt, out var consistent);
                if (!OrderedLoads) Interlocked.MemoryBarrier(); // the loads above complete before the version is read again
                if (consistent && Volatile.Read(ref stripe.Version) == version) return found;
            }
            Thread.SpinWait(4 << Math.Min(attempt, 6));
        }
        lock (stripe.Gate)
        {
            var i = stripe.Find(key, hash, out _);
            if (i < 0)
            {
                location = default;
                expiresAt = 0;
                return false;
            }
            ref var e = ref stripe.Entries[i];
            location = new KeyLocation(e.SegmentId, e.Offset, e.Length);
            expiresAt = (e.Flags & Entry.HasExpiry) != 0 ? stripe.Expiry![i] : 0;
            return true;
        }
    }

    /// <summary>x86/x64 never reorders loads with other loads, so optimistic readers need no fence there.</summary>
    private static readonly bool OrderedLoads = System.Runtime.Intrinsics.X86.X86Base.IsSupported;

    /// <summary>Points <paramref name="key"/> at <paramref name="location"/>. Returns the location it replaced, if any.</summary>
    public bool Set(ReadOnlySpan<byte> key, KeyLocation location, long expiresAt, out KeyLocation previous, out long previousExpiresAt)
    {
        var hash = Hash(key);
        var stripe = StripeOf(hash);
        lock (stripe.Gate)
        {
            stripe.BeginWrite();
            try
            {
                var i = stripe.Find(key, hash, out _);
                if (i >= 0)
                {
                    ref var e = ref stripe.Entries[i];
                    previous = new KeyLocation(e.SegmentId, e.Offset, e.Length);
                    previousExpiresAt = (e.Flags & Entry.HasExpiry) != 0 ? stripe.Expiry![i] : 0;
                    stripe.Update(i, location, expiresAt);
                    return true;
                }
                stripe.Insert(key, hash, location, expiresAt);
                previous = default;
                previousExpiresAt = 0;
                return false;
            }
            finally
            {
                stripe.EndWrite();
            }
        }
    }

    /// <summary>Removes <paramref name="key"/>; returns false when it was not present.</summary>
    public bool Remove(ReadOnlySpan<byte> key, out KeyLocation previous, out long previousExpiresAt)
    {
        var hash = Hash(key);
        var stripe = StripeOf(hash);
        lock (stripe.Gate)
        {
            stripe.BeginWrite();
            try
            {
                var i = stripe.Find(key, hash, out var prev);
                if (i < 0)
                {
                    previous = default;
                    previousExpiresAt = 0;
                    return false;
                }
                ref var e = ref stripe.Entries[i];
                previous = new KeyLocation(e.SegmentId, e.Offset, e.Length);
                previousExpiresAt = (e.Flags & Entry.HasExpiry) != 0 ? stripe.Expiry![i] : 0;
                stripe.RemoveAt(i, prev);
                return true;
            }
            finally
            {
                stripe.EndWrite();
            }
        }
    }

    /// <summary>Compaction's conditional update: moves <paramref name="key"/> to <paramref name="replacement"/> only if it
    /// still points at <paramref name="expected"/> (a write that raced the merge always wins).</summary>
    public bool TryRelocate(ReadOnlySpan<byte> key, KeyLocation expected, KeyLocation replacement)
    {
        var hash = Hash(key);
        var stripe = StripeOf(hash);
        lock (stripe.Gate)
        {
            stripe.BeginWrite();
            try
            {
                var i = stripe.Find(key, hash, out _);
                if (i < 0) return false;
                ref var e = ref stripe.Entries[i];
                if (e.SegmentId != expected.SegmentId || e.Offset != expected.Offset) return false;
                e.SegmentId = replacement.SegmentId;
                e.Offset = replacement.Offset;
                e.Length = replacement.Length;
                return true;
            }
            finally
            {
                stripe.EndWrite();
            }
        }
    }

    /// <summary>Removes <paramref name="key"/> only if it still points at <paramref name="expected"/>.</summary>
    public bool TryRemoveAt(ReadOnlySpan<byte> key, KeyLocation expected)
    {
        var hash = Hash(key);
        var stripe = StripeOf(hash);
        lock (stripe.Gate)
        {
            stripe.BeginWrite();
            try
            {
                var i = stripe.Find(key, hash, out var prev);
                if (i < 0) return false;
                ref var e = ref stripe.Entries[i];
                if (e.SegmentId != expected.SegmentId || e.Offset != expected.Offset) return false;
                stripe.RemoveAt(i, prev);
                return true;
            }
            finally
            {
                stripe.EndWrite();
            }
        }
    }

    // ---- recovery: newest sequence number wins, whatever order the records are loaded in ----

    /// <summary>Starts a bulk load. <paramref name="expectedKeys"/> and <paramref name="expectedKeyBytes"/> pre-size the
    /// stripes (0 when unknown; key bytes default to 24 per key).</summary>
    public void BeginRecovery(long expectedKeys, long expectedKeyBytes = 0)
    {
        // Clamped so that no per-stripe array size computed from it can overflow: an estimate is only a hint.
        var perStripe = (int)Math.Clamp(expectedKeys / StripeCount + expectedKeys / StripeCount / 16 + 4, 0, Array.MaxLength / 32);
        if (expectedKeyBytes <= 0) expectedKeyBytes = expectedKeys * 24;
        var keyBytesPerStripe = (int)Math.Clamp(expectedKeyBytes / StripeCount + expectedKeyBytes / StripeCount / 16 + 64, 0, Array.MaxLength / 2);
        foreach (var s in _stripes) s.BeginRecovery(expectedKeys > 0 ? perStripe : 0, expectedKeys > 0 ? keyBytesPerStripe : 0);
    }

    /// <summary>Applies one record found on disk. A tombstone is kept (as a marker) until <see cref="EndRecovery"/> so that an
    /// older put loaded later cannot bring the key back.</summary>
    public void Recover(ReadOnlySpan<byte> key, KeyLocation location, ulong sequence, long expiresAt, bool tombstone) =>
        Recover(key, Hash(key), location, sequence, expiresAt, tombstone);

    /// <summary><see cref="Recover(ReadOnlySpan{byte}, KeyLocation, ulong, long, bool)"/> with the key's <see cref="Hash"/>
    /// already computed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public void Recover(ReadOnlySpan<byte> key, ulong hash, KeyLocation location, ulong sequence, long expiresAt, bool tombstone)
    {
        var stripe = StripeOf(hash);
        lock (stripe.Gate) stripe.Recover(key, hash, location, sequence, expiresAt, tombstone);
    }

    /// <summary>Takes one stripe's lock for a run of <see cref="RecoveryStripe.Recover"/> calls (keys whose
    /// <see cref="StripeIndex"/> is <paramref name="stripeIndex"/>), instead of once per key.</summary>
    public RecoveryStripe EnterRecoveryStripe(int stripeIndex) => new(_stripes[stripeIndex]);

    /// <summary>A stripe locked for bulk recovery; dispose to release it.</summary>
    public readonly ref struct RecoveryStripe
    {
        private readonly Stripe _stripe;
        private readonly Lock.Scope _scope;

        internal RecoveryStripe(Stripe stripe)
        {
            _stripe = stripe;
            _scope = stripe.Gate.EnterScope();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Recover(ReadOnlySpan<byte> key, ulong hash, KeyLocation location, ulong sequence, long expiresAt, bool tombstone) =>
            _stripe.Recover(key, hash, location, sequence, expiresAt, tombstone);

        /// <summary>Starts loading what inserting a key with this hash will touch first: its bucket.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void PrefetchBucket(ulong hash)
        {
            var buckets = _stripe.Buckets;
            Prefetch.Line(ref buckets[(int)hash & (buckets.Length - 1)]);
        }

        /// <summary>Then the head of the bucket's chain (its bucket, prefetched earlier, is in cache by now).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void PrefetchChainHead(ulong hash)
        {
            var buckets = _stripe.Buckets;
            var head = Stripe.HeadOf(buckets[(int)hash & (buckets.Length - 1)]);
            if (head >= 0 && head < _stripe.Entries.Length) Prefetch.Line(ref _stripe.Entries[head]);
        }

        public void Dispose() => _scope.Dispose();
    }

    /// <summary>Ends a bulk load: drops tombstone markers and the sequence arrays.</summary>
    public void EndRecovery()
    {
        foreach (var s in _stripes) s.EndRecovery();
    }

    /// <summary>Entries, including expired ones.</summary>
    public long Count
    {
        get
        {
            long n = 0;
            foreach (var s in _stripes) n += Volatile.Read(ref s.Live);
            return n;
        }
    }

    /// <summary>True when some entry carries an expiry.</summary>
    public bool HasExpiringEntries
    {
        get
        {
            foreach (var s in _stripes)
                if (Volatile.Read(ref s.ExpiringCount) > 0) return true;
            return false;
        }
    }

    /// <summary>Record bytes of expired entries per segment (for choosing compaction inputs).</summary>
    public Dictionary<uint, long> ExpiredBytesBySegment(long now)
    {
        var result = new Dictionary<uint, long>();
        foreach (var s in _stripes)
        {
            lock (s.Gate)
            {
                if (s.ExpiringCount == 0) continue;
                for (var i = 0; i < s.Used; i++)
                {
                    ref var e = ref s.Entries[i];
                    if ((e.Flags & (Entry.InUse | Entry.HasExpiry)) == (Entry.InUse | Entry.HasExpiry) && s.Expiry![i] <= now)
                        result[e.SegmentId] = result.GetValueOrDefault(e.SegmentId) + e.Length;
                }
            }
        }
        return result;
    }

    /// <summary>Entries whose expiry (if any) is after <paramref name="now"/>.</summary>
    public long CountUnexpired(long now)
    {
        long n = 0;
        foreach (var s in _stripes)
        {
            lock (s.Gate)
            {
                n += s.Live;
                if (s.ExpiringCount == 0) continue;
                for (var i = 0; i < s.Used; i++)
                {
                    ref var e = ref s.Entries[i];
                    if ((e.Flags & (Entry.InUse | Entry.HasExpiry)) == (Entry.InUse | Entry.HasExpiry) && s.Expiry![i] <= now) n--;
                }
            }
        }
        return n;
    }

    /// <summary>Copies out the entries of one stripe whose key starts with <paramref name="prefix"/>.
    /// Used by enumeration, which walks stripe by stripe so it never holds a lock while the caller runs.</summary>
    public void SnapshotStripe(int stripeIndex, ReadOnlySpan<byte> prefix, List<KeyDirEntry> into)
    {
        var s = _stripes[stripeIndex];
        lock (s.Gate)
        {
            for (var i = 0; i < s.Used; i++)
            {
                ref var e = ref s.Entries[i];
                if ((e.Flags & Entry.InUse) == 0) continue;
                var key = s.Keys.AsSpan(e.KeyOffset, e.KeyLength);
                if (!key.StartsWith(prefix)) continue;
                into.Add(new KeyDirEntry(key.ToArray(), new KeyLocation(e.SegmentId, e.Offset, e.Length),
                    (e.Flags & Entry.HasExpiry) != 0 ? s.Expiry![i] : 0));
            }
        }
    }

    public static int StripeTotal => StripeCount;

    /// <summary>Up to <paramref name="max"/> keys whose expiry is at or before <paramref name="now"/> (for the expiry
    /// sweeper, which writes their tombstones). Allocates only for the keys it returns.</summary>
    public void CollectExpired(long now, List<byte[]> into, int max)
    {
        foreach (var s in _stripes)
        {
            if (s.Expiry is null || Volatile.Read(ref s.ExpiringCount) == 0 || Volatile.Read(ref s.EarliestExpiry) > now) continue;
            lock (s.Gate)
            {
                var earliest = long.MaxValue;
                var i = 0;
                for (; i < s.Used && into.Count < max; i++)
                {
                    ref var e = ref s.Entries[i];
                    if ((e.Flags & (Entry.InUse | Entry.HasExpiry)) != (Entry.InUse | Entry.HasExpiry)) continue;
                    earliest = Math.Min(earliest, s.Expiry[i]);
                    if (s.Expiry[i] <= now) into.Add(s.Keys.AsSpan(e.KeyOffset, e.KeyLength).ToArray());
                }
                if (i == s.Used) s.EarliestExpiry = earliest; // a whole scan: the bound is exact again
            }
            if (into.Count >= max) return;
        }
    }

    /// <summary>The stripe a hash falls in (0 to <see cref="StripeTotal"/> - 1).</summary>
    public static int StripeIndex(ulong hash) => (int)(hash >> (64 - StripeBits));

    /// <summary>Record bytes the keydir points at, per segment id (one pass over every stripe, for open's live-byte counts).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once over every key during open
    public Dictionary<uint, long> LiveBytesBySegment()
    {
        var result = new Dictionary<uint, long>();
        foreach (var s in _stripes)
            lock (s.Gate)
            {
                uint lastId = 0;
                long lastBytes = 0;
                for (var i = 0; i < s.Used; i++)
                {
                    ref var e = ref s.Entries[i];
                    if ((e.Flags & Entry.InUse) == 0) continue;
                    if (e.SegmentId != lastId)
                    {
                        if (lastBytes != 0) CollectionsMarshal.GetValueRefOrAddDefault(result, lastId, out _) += lastBytes;
                        lastId = e.SegmentId;
                        lastBytes = 0;
                    }
                    lastBytes += e.Length;
                }
                if (lastBytes != 0) CollectionsMarshal.GetValueRefOrAddDefault(result, lastId, out _) += lastBytes;
            }
        return result;
    }

    /// <summary>Managed bytes held by the table's arrays.</summary>
    public long ApproximateBytes
    {
        get
        {
            long n = 0;
            foreach (var s in _stripes)
                lock (s.Gate)
                    n += s.Buckets.Length * 4L + s.Entries.Length * (long)Unsafe.SizeOf<Entry>() + s.Keys.Length + (s.Expiry?.Length ?? 0) * 8L + 128;
            return n;
        }
    }

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    internal struct Entry
    {
        public const byte InUse = 1, HasExpiry = 2, Tombstone = 4;
        public int Next;          // next entry in the bucket chain, -1 = end; free-list link when not in use
        public uint SegmentId;
        public uint Offset;
        public uint Length;
        public int KeyOffset;     // into the stripe's key arena
        public ushort KeyLength;
        public byte Tag;          // 8 more bits of the hash, checked before comparing keys
        public byte Flags;
    }

    internal sealed class Stripe
    {
        /// <summary>Each bucket: bits 0–23 = index + 1 of its chain's first entry (0 = empty chain); bits 24–31 = a
        /// filter of the chain's tags (bit <c>tag &amp; 7</c> set for every entry in it), so most lookups of an absent key
        /// end here without touching an entry or a key.</summary>
        public uint[] Buckets = new uint[4];

        /// <summary>Entries a stripe can hold: the bucket keeps 24 bits of index (256 stripes: about 4.29 billion keys).</summary>
        public const int MaxEntries = (1 << 24) - 2;

        private const uint IndexMask = (1u << 24) - 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int HeadOf(uint bucket) => (int)(bucket & IndexMask) - 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint FilterBit(byte tag) => 1u << (24 + (tag & 7));

        /// <summary>False when no entry of the bucket's chain can have <paramref name="tag"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool MayHold(uint bucket, byte tag) => (bucket & FilterBit(tag)) != 0;
        public Entry[] Entries = new Entry[4];
        public int Used;                         // slots ever used (high-water mark)
        public int FreeHead = -1;
        public int Live;
        public byte[] Keys = new byte[64];
        public int KeysUsed;
        public int KeysGarbage;
        public long[]? Expiry;
        public int ExpiringCount;
        /// <summary>A lower bound of the expiries in this stripe (lowered as they are set, recomputed by a full sweep scan):
        /// the expiry sweeper skips a stripe where nothing can have expired yet.</summary>
        public long EarliestExpiry = long.MaxValue;
        public ulong[]? Seq;                     // only during recovery
        public int Version;                      // odd while a writer changes the stripe (see KeyDir.TryGet)
        public readonly Lock Gate = new();       // taken by writers, by enumeration and by a reader after failed optimistic attempts

        public void BeginWrite() => Interlocked.Increment(ref Version); // full fence: readers see "odd" before any change
        public void EndWrite() => Volatile.Write(ref Version, Version + 1);

        /// <summary>Lookup without the lock. Any torn state (index out of range, cycle, key slice outside the arena)
        /// reports <paramref name="consistent"/> = false; the caller then retries or locks.</summary>
        public bool TryFindOptimistic(ReadOnlySpan<byte> key, ulong hash, out KeyLocation location, out long expiresAt, out bool consistent)
        {
            location = default;
            expiresAt = 0;
            consistent = false;
            var buckets = Volatile.Read(ref Buckets);
            var entries = Volatile.Read(ref Entries);
            var keys = Volatile.Read(ref Keys);
            var tag = TagOf(hash);
            var bucket = buckets[(int)hash & (buckets.Length - 1)];
            if (!MayHold(bucket, tag))
            {
                consistent = true;
                return false;
            }
            var i = HeadOf(bucket);
            for (var steps = 0; i >= 0; steps++)
            {
                if ((uint)i >= (uint)entries.Length || steps > entries.Length) return false;
                var e = entries[i];
                if (e.Tag == tag && e.KeyLength == key.Length)
                {
                    if ((uint)e.KeyOffset > (uint)keys.Length || e.KeyOffset + e.KeyLength > keys.Length) return false;
                    if (keys.AsSpan(e.KeyOffset, e.KeyLength).SequenceEqual(key))
                    {
                        location = new KeyLocation(e.SegmentId, e.Offset, e.Length);
                        if ((e.Flags & Entry.HasExpiry) != 0)
                        {
                            var expiry = Volatile.Read(ref Expiry);
                            if (expiry is null || (uint)i >= (uint)expiry.Length) return false;
                            expiresAt = expiry[i];
                        }
                        consistent = true;
                        return (e.Flags & Entry.InUse) != 0;
                    }
                }
                i = e.Next;
            }
            consistent = true;
            return false;
        }

        private static byte TagOf(ulong hash) => (byte)(hash >> 40);

        /// <summary>Applies one record found on disk; the caller holds <see cref="Gate"/>. No reader exists while the store
        /// is being opened, so the optimistic-read version needs no bump here.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public void Recover(ReadOnlySpan<byte> key, ulong hash, KeyLocation location, ulong sequence, long expiresAt, bool tombstone)
        {
            var i = Find(key, hash, out _);
            if (i < 0)
            {
                i = Insert(key, hash, location, expiresAt);
                Seq![i] = sequence;
                if (tombstone) Entries[i].Flags |= Entry.Tombstone;
                return;
            }
            ref var e = ref Entries[i];
            var currentTombstone = (e.Flags & Entry.Tombstone) != 0;
            if (Seq![i] > sequence || (Seq[i] == sequence && !tombstone && currentTombstone)) return; // older
            Update(i, location, expiresAt);
            Seq[i] = sequence;
            if (tombstone) Entries[i].Flags |= Entry.Tombstone;
            else Entries[i].Flags &= unchecked((byte)~Entry.Tombstone);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public int Find(ReadOnlySpan<byte> key, ulong hash, out int previous)
        {
            previous = -1;
            var tag = TagOf(hash);
            var bucket = Buckets[(int)hash & (Buckets.Length - 1)];
            if (!MayHold(bucket, tag)) return -1;
            var i = HeadOf(bucket);
            var entries = Entries;
            while (i >= 0)
            {
                ref var e = ref entries[i];
                if (e.Tag == tag && e.KeyLength == key.Length && Keys.AsSpan(e.KeyOffset, e.KeyLength).SequenceEqual(key)) return i;
                previous = i;
                i = e.Next;
            }
            return -1;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public int Insert(ReadOnlySpan<byte> key, ulong hash, KeyLocation location, long expiresAt)
        {
            if (Live + 1 > Buckets.Length + (Buckets.Length >> 1)) Rehash(Buckets.Length * 2);
            int i;
            if (FreeHead >= 0)
            {
                i = FreeHead;
                FreeHead = Entries[i].Next;
            }
            else
            {
                if (Used == Entries.Length)
                {
                    if (Used >= MaxEntries)
                        throw new InvalidOperationException($"The keydir is full: one of its {StripeCount} stripes holds {MaxEntries:N0} keys, the most its 24-bit bucket index can address (about {(long)MaxEntries * StripeCount:N0} keys in all).");
                    GrowEntries((int)Math.Min(MaxEntries, Used + Math.Max(4, Used >> 2)));
                }
                i = Used++;
            }
            var keyOffset = StoreKey(key);
            ref var e = ref Entries[i];
            var bucket = (int)hash & (Buckets.Length - 1);
            e.Next = HeadOf(Buckets[bucket]);
            e.KeyOffset = keyOffset;
            e.KeyLength = (ushort)key.Length;
            e.Tag = TagOf(hash);
            e.Flags = Entry.InUse;
            Buckets[bucket] = (uint)(i + 1) | (Buckets[bucket] & ~IndexMask) | FilterBit(e.Tag);
            Live++;
            Update(i, location, expiresAt);
            return i;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public void Update(int i, KeyLocation location, long expiresAt)
        {
            ref var e = ref Entries[i];
            e.SegmentId = location.SegmentId;
            e.Offset = location.Offset;
            e.Length = location.Length;
            var had = (e.Flags & Entry.HasExpiry) != 0;
            if (expiresAt != 0)
            {
                if (Expiry is null || Expiry.Length < Entries.Length) Array.Resize(ref Expiry, Entries.Length);
                Expiry[i] = expiresAt;
                if (expiresAt < EarliestExpiry) EarliestExpiry = expiresAt;
                e.Flags |= Entry.HasExpiry;
                if (!had) ExpiringCount++;
            }
            else if (had)
            {
                e.Flags &= unchecked((byte)~Entry.HasExpiry);
                ExpiringCount--;
            }
        }

        public void RemoveAt(int i, int previous)
        {
            ref var e = ref Entries[i];
            var bucket = (int)KeyDir.Hash(Keys.AsSpan(e.KeyOffset, e.KeyLength)) & (Buckets.Length - 1);
            var head = previous >= 0 ? HeadOf(Buckets[bucket]) : e.Next;
            if (previous >= 0) Entries[previous].Next = e.Next;
            // The chain lost a tag: rebuild its filter from the entries left (a chain is ~1.5 entries long).
            var filter = 0u;
            for (var j = head; j >= 0; j = Entries[j].Next) filter |= FilterBit(Entries[j].Tag);
            Buckets[bucket] = (uint)(head + 1) | filter;
            if ((e.Flags & Entry.HasExpiry) != 0) ExpiringCount--;
            KeysGarbage += e.KeyLength;
            e = default;
            e.Next = FreeHead;
            FreeHead = i;
            Live--;
            if (KeysGarbage > 4096 && KeysGarbage > KeysUsed / 2) CompactKeys();
        }

        private int StoreKey(ReadOnlySpan<byte> key)
        {
            if (KeysUsed + key.Length > Keys.Length)
            {
                if (KeysGarbage > KeysUsed / 4) CompactKeys();
                if (KeysUsed + key.Length > Keys.Length)
                {
                    var size = Math.Max(KeysUsed + key.Length, Keys.Length + Math.Max(64, Keys.Length >> 2));
                    Array.Resize(ref Keys, (int)Math.Min(Array.MaxLength, size));
                }
            }
            var offset = KeysUsed;
            key.CopyTo(Keys.AsSpan(offset));
            KeysUsed += key.Length;
            return offset;
        }

        private void CompactKeys()
        {
            var live = KeysUsed - KeysGarbage;
            var fresh = new byte[Math.Max(64, live + (live >> 3))];
            var used = 0;
            for (var i = 0; i < Used; i++)
            {
                ref var e = ref Entries[i];
                if ((e.Flags & Entry.InUse) == 0) continue;
                Keys.AsSpan(e.KeyOffset, e.KeyLength).CopyTo(fresh.AsSpan(used));
                e.KeyOffset = used;
                used += e.KeyLength;
            }
            Keys = fresh;
            KeysUsed = used;
            KeysGarbage = 0;
        }

        private void GrowEntries(int size)
        {
            Array.Resize(ref Entries, size);
            if (Expiry is not null) Array.Resize(ref Expiry, size);
            if (Seq is not null) Array.Resize(ref Seq, size);
        }

        private void Rehash(int bucketCount)
        {
            var buckets = new uint[bucketCount];
            for (var i = 0; i < Used; i++)
            {
                ref var e = ref Entries[i];
                if ((e.Flags & Entry.InUse) == 0) continue;
                var bucket = (int)KeyDir.Hash(Keys.AsSpan(e.KeyOffset, e.KeyLength)) & (bucketCount - 1);
                e.Next = HeadOf(buckets[bucket]);
                buckets[bucket] = (uint)(i + 1) | (buckets[bucket] & ~IndexMask) | FilterBit(e.Tag);
            }
            Buckets = buckets;
        }

        public void BeginRecovery(int expected, int expectedKeyBytes)
        {
            expected = Math.Min(expected, MaxEntries);
            if (expected > Entries.Length) GrowEntries(expected);
            var buckets = 4;
            while (buckets + (buckets >> 1) < expected) buckets *= 2;
            if (buckets > Buckets.Length) Rehash(buckets);
            if (expectedKeyBytes > Keys.Length) Array.Resize(ref Keys, expectedKeyBytes);
            Seq = new ulong[Entries.Length];
        }

        public void EndRecovery()
        {
            lock (Gate)
            {
                BeginWrite();
                try { RemoveTombstones(); } finally { EndWrite(); }
            }
        }

        private void RemoveTombstones()
        {
            for (var i = 0; i < Used; i++)
            {
                ref var e = ref Entries[i];
                if ((e.Flags & (Entry.InUse | Entry.Tombstone)) != (Entry.InUse | Entry.Tombstone)) continue;
                var key = Keys.AsSpan(e.KeyOffset, e.KeyLength);
                var found = Find(key, KeyDir.Hash(key), out var previous);
                RemoveAt(found, previous);
            }
            Seq = null;
            if (Used + (Used >> 3) + 4 < Entries.Length) GrowEntries(Math.Max(4, Used + (Used >> 4) + 4)); // give back an over-estimate
            if (Keys.Length > KeysUsed + (KeysUsed >> 2) + 64) Array.Resize(ref Keys, Math.Max(64, KeysUsed + (KeysUsed >> 4))); // an over-estimate too
        }
    }
}

internal readonly record struct KeyDirEntry(byte[] Key, KeyLocation Location, long ExpiresAt);
