namespace Bitcask.Server;

/// <summary>Redis's glob-style matching (util.c stringmatchlen): <c>*</c>, <c>?</c>, <c>[abc]</c>, <c>[^a-z]</c>, and
/// <c>\x</c> for a literal x. Used by KEYS, SCAN MATCH, PSUBSCRIBE and CONFIG GET.</summary>
internal static class Glob
{
    public static bool Match(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text, bool ignoreCase = false, int depth = 0)
    {
        if (depth > 1000) return false; // Redis bounds the recursion too
        while (pattern.Length > 0 && text.Length > 0)
        {
            switch (pattern[0])
            {
                case (byte)'*':
                    while (pattern.Length > 1 && pattern[1] == '*') pattern = pattern[1..];
                    if (pattern.Length == 1) return true;
                    for (var i = 0; i <= text.Length; i++)
                        if (Match(pattern[1..], text[i..], ignoreCase, depth + 1)) return true;
                    return false;
                case (byte)'?':
                    break;
                case (byte)'[':
                {
                    pattern = pattern[1..];
                    var not = pattern.Length > 0 && pattern[0] == '^';
                    if (not) pattern = pattern[1..];
                    var match = false;
                    while (true)
                    {
                        if (pattern.Length == 0) break;
                        if (pattern[0] == '\\' && pattern.Length >= 2)
                        {
                            pattern = pattern[1..];
                            if (Eq(pattern[0], text[0], ignoreCase)) match = true;
                        }
                        else if (pattern[0] == ']') break;
                        else if (pattern.Length >= 3 && pattern[1] == '-')
                        {
                            int start = pattern[0], end = pattern[2], c = text[0];
                            if (start > end) (start, end) = (end, start);
                            if (ignoreCase) { start = Lower(start); end = Lower(end); c = Lower(c); }
                            pattern = pattern[2..];
                            if (c >= start && c <= end) match = true;
                        }
                        else if (Eq(pattern[0], text[0], ignoreCase)) match = true;
                        pattern = pattern[1..];
                    }
                    if (not) match = !match;
                    if (!match) return false;
                    if (pattern.Length == 0) return text.Length == 1; // unterminated class: Redis treats the end as ']'
                    break;
                }
                case (byte)'\\':
                    if (pattern.Length >= 2) pattern = pattern[1..];
                    if (!Eq(pattern[0], text[0], ignoreCase)) return false;
                    break;
                default:
                    if (!Eq(pattern[0], text[0], ignoreCase)) return false;
                    break;
            }
            pattern = pattern[1..];
            text = text[1..];
        }
        while (pattern.Length > 0 && pattern[0] == '*') pattern = pattern[1..];
        return pattern.Length == 0 && text.Length == 0;
    }

    private static int Lower(int c) => c is >= 'A' and <= 'Z' ? c | 0x20 : c;
    private static bool Eq(byte a, byte b, bool ignoreCase) => a == b || (ignoreCase && Lower(a) == Lower(b));
}
