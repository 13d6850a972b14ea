using System.Globalization;

namespace Bitcask.Bench.Harness;

/// <summary>"--name value" options of one command, checked against the names the command accepts.</summary>
public sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public Args(IEnumerable<string> args, params string[] allowed)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var name = e.Current;
            if (!name.StartsWith("--", StringComparison.Ordinal) || name.Length == 2)
                throw new ArgumentException($"Unexpected argument '{name}'; options are {string.Join(", ", allowed.Select(a => "--" + a))}.");
            name = name[2..];
            if (!allowed.Contains(name)) throw new ArgumentException($"Unknown option '--{name}'; options are {string.Join(", ", allowed.Select(a => "--" + a))}.");
            if (!e.MoveNext()) throw new ArgumentException($"Option '--{name}' needs a value.");
            _values[name] = e.Current;
        }
    }

    public string String(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    public string? OptionalString(string name) => _values.GetValueOrDefault(name);

    public long Long(string name, long fallback, long min, long max) => Parse(name, fallback, min, max, long.Parse);

    public int Int(string name, int fallback, int min, int max) => (int)Parse(name, fallback, min, max, long.Parse);

    public double Double(string name, double fallback, double min, double max) =>
        Parse(name, fallback, min, max, (s, style, culture) => double.Parse(s, NumberStyles.Float, culture));

    /// <summary>A comma-separated list of counts, e.g. "1000000,10000000" (suffixes k and M allowed).</summary>
    public long[] Longs(string name, long[] fallback, long min, long max) =>
        _values.TryGetValue(name, out var text)
            ? text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => Check(name, ParseCount(name, t), min, max)).ToArray()
            : fallback;

    private T Parse<T>(string name, T fallback, T min, T max, Func<string, NumberStyles, IFormatProvider, T> parse) where T : IComparable<T>
    {
        if (!_values.TryGetValue(name, out var text)) return fallback;
        T value;
        if (typeof(T) == typeof(long)) value = (T)(object)ParseCount(name, text);
        else
        {
            try { value = parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture); }
            catch (FormatException) { throw new ArgumentException($"--{name} must be a number, not '{text}'."); }
            catch (OverflowException) { throw new ArgumentException($"--{name} is out of range: '{text}'."); }
        }
        return Check(name, value, min, max);
    }

    private static T Check<T>(string name, T value, T min, T max) where T : IComparable<T> =>
        value.CompareTo(min) < 0 || value.CompareTo(max) > 0
            ? throw new ArgumentException($"--{name} must be between {min} and {max}, not {value}.")
            : value;

    private static long ParseCount(string name, string text)
    {
        var multiplier = 1L;
        var digits = text;
        if (text.EndsWith('k') || text.EndsWith('K')) { multiplier = 1_000; digits = text[..^1]; }
        else if (text.EndsWith('M') || text.EndsWith('m')) { multiplier = 1_000_000; digits = text[..^1]; }
        if (!long.TryParse(digits, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            throw new ArgumentException($"--{name} must be a whole number (k and M suffixes allowed), not '{text}'.");
        try { return checked(value * multiplier); }
        catch (OverflowException) { throw new ArgumentException($"--{name} is out of range: '{text}'."); }
    }
}
