namespace Bitcask.Server.Protocol;

/// <summary>
/// One parsed command's arguments, held in a reusable arena (one per connection) so parsing a request allocates nothing:
/// the hot commands (GET, SET, INCR) run straight from these spans, and only the general command path asks for
/// <see cref="ToArrays"/>. Valid until the next parse into it. Not thread-safe.
/// </summary>
internal sealed class RequestArgs
{
    /// <summary>An arena grown past this for one huge argument is dropped after the command, not kept per connection.</summary>
    private const int KeepArenaBytes = 64 * 1024;

    private byte[] _arena = new byte[1024];
    private int _used;
    private (int Start, int Length)[] _ranges = new (int, int)[8];

    /// <summary>Number of arguments, the command name included; 0 for a blank line or an empty multibulk.</summary>
    public int Count { get; private set; }

    public ReadOnlySpan<byte> this[int index] => _arena.AsSpan(_ranges[index].Start, _ranges[index].Length);

    /// <summary>Starts a new command (the ranges grow as arguments arrive, never from a claimed count).</summary>
    public void Reset()
    {
        if (_arena.Length > KeepArenaBytes) _arena = new byte[1024];
        _used = 0;
        Count = 0;
    }

    /// <summary>Room for the next argument of <paramref name="length"/> bytes; <see cref="Commit"/> adds it.</summary>
    public Span<byte> Reserve(int length)
    {
        if (_used + length > _arena.Length)
        {
            var bigger = new byte[Math.Max(_arena.Length * 2L, (long)_used + length) is var size && size > Array.MaxLength ? Array.MaxLength : (int)size];
            _arena.AsSpan(0, _used).CopyTo(bigger);
            _arena = bigger;
        }
        return _arena.AsSpan(_used, length);
    }

    public void Commit(int length)
    {
        if (Count == _ranges.Length) Array.Resize(ref _ranges, _ranges.Length * 2);
        _ranges[Count++] = (_used, length);
        _used += length;
    }

    public void Add(ReadOnlySpan<byte> value)
    {
        value.CopyTo(Reserve(value.Length));
        Commit(value.Length);
    }

    /// <summary>Whether argument <paramref name="index"/> is <paramref name="word"/> (lower-case ASCII), ignoring case.</summary>
    public bool Is(int index, ReadOnlySpan<byte> word) => System.Text.Ascii.EqualsIgnoreCase(this[index], word);

    /// <summary>A copy of every argument, for the general command path.</summary>
    public byte[][] ToArrays()
    {
        if (Count == 0) return [];
        var result = new byte[Count][];
        for (var i = 0; i < Count; i++) result[i] = this[i].ToArray();
        return result;
    }
}
