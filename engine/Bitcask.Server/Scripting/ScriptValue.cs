using System.Text;

namespace Bitcask.Server.Scripting;

/// <summary>
/// A Redis reply as a Lua script sees it: what <c>redis.call</c> returns to a script and what a script returns to
/// the client. The shapes are RESP2's; the mapping to Lua values follows Redis 7 (see each case).
/// Immutable, so thread-safe. <see cref="Bulk"/> and <see cref="Array"/> compare by content.
/// </summary>
internal abstract record ScriptValue
{
    private ScriptValue()
    {
    }

    /// <summary>The shared nil value.</summary>
    internal static readonly Nil NilValue = new();

    /// <summary>A status reply (<c>+OK</c>); in Lua a table <c>{ok = "OK"}</c>.</summary>
    internal sealed record Status(string Text) : ScriptValue;

    /// <summary>
    /// An error reply (<c>-ERR ...</c>); <see cref="Message"/> is the whole text after the dash, error code first
    /// (<c>ERR ...</c>, <c>WRONGTYPE ...</c>, <c>NOSCRIPT ...</c>). In Lua a table <c>{err = "ERR ..."}</c>.
    /// </summary>
    internal sealed record Error(string Message) : ScriptValue;

    /// <summary>An integer reply (<c>:1</c>); in Lua an integer.</summary>
    internal sealed record Integer(long Value) : ScriptValue;

    /// <summary>A bulk string (<c>$3 foo</c>); in Lua a string (bytes, not necessarily UTF-8).</summary>
    internal sealed record Bulk(byte[] Value) : ScriptValue
    {
        /// <summary>A bulk string holding the UTF-8 bytes of <paramref name="text"/>.</summary>
        internal static Bulk From(string text) => new(Encoding.UTF8.GetBytes(text));

        /// <summary>Content equality (the bytes), not reference equality of the arrays.</summary>
        public bool Equals(Bulk? other) => other is not null && Value.AsSpan().SequenceEqual(other.Value);

        /// <inheritdoc />
        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.AddBytes(Value);
            return hash.ToHashCode();
        }

        /// <inheritdoc />
        public override string ToString() => $"Bulk({Encoding.UTF8.GetString(Value)})";
    }

    /// <summary>A nil bulk or nil array (<c>$-1</c> / <c>*-1</c>); in Lua <c>false</c>.</summary>
    internal sealed record Nil : ScriptValue;

    /// <summary>An array reply (<c>*n</c>); in Lua a table whose array part holds the items.</summary>
    internal sealed record Array(IReadOnlyList<ScriptValue> Items) : ScriptValue
    {
        /// <summary>Content equality (item by item), not reference equality of the lists.</summary>
        public bool Equals(Array? other) => other is not null && Items.SequenceEqual(other.Items);

        /// <inheritdoc />
        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (ScriptValue item in Items)
            {
                hash.Add(item);
            }

            return hash.ToHashCode();
        }

        /// <inheritdoc />
        public override string ToString() => $"Array[{string.Join(", ", Items)}]";
    }
}
