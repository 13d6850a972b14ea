using System.Globalization;
using System.Text;

namespace Bitcask.Cli;

/// <summary>How bytes are shown to people and scripts.</summary>
internal static class Text
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static bool TryUtf8(ReadOnlySpan<byte> bytes, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    /// <summary>Valid UTF-8 without control characters (other than tab/newline) counts as printable text.</summary>
    public static bool IsPrintable(string text)
    {
        foreach (var c in text)
            if (char.IsControl(c) && c is not ('\t' or '\n' or '\r')) return false;
        return true;
    }

    /// <summary>A short, unambiguous rendering: <c>"text"</c> (JSON-style escapes) for printable UTF-8, else <c>0x…</c> hex.</summary>
    public static string Show(ReadOnlySpan<byte> bytes, int maxChars)
    {
        if (TryUtf8(bytes, out var text) && IsPrintable(text))
        {
            var shown = maxChars > 0 && text.Length > maxChars ? text[..maxChars] : text;
            var quoted = System.Text.Json.JsonSerializer.Serialize(shown, JsonOut.Options);
            return shown.Length < text.Length ? $"{quoted}… ({bytes.Length} bytes)" : quoted;
        }
        var hexBytes = maxChars > 0 ? Math.Min(bytes.Length, Math.Max(1, maxChars / 2)) : bytes.Length;
        var hex = "0x" + Convert.ToHexStringLower(bytes[..hexBytes]);
        return hexBytes < bytes.Length ? $"{hex}… ({bytes.Length} bytes)" : hex;
    }

    public static string Expiry(long unixMs) =>
        unixMs == 0 ? "never" : DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(unixMs, -62135596800000, 253402300799999)).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:F1} KiB",
        < 1024L * 1024 * 1024 => $"{n / (1024.0 * 1024):F1} MiB",
        _ => $"{n / (1024.0 * 1024 * 1024):F2} GiB",
    };

    /// <summary>Parses a duration: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>2h</c>, <c>7d</c>, or a .NET TimeSpan (<c>01:30:00</c>).</summary>
    public static bool TryParseDuration(string s, out TimeSpan value)
    {
        value = default;
        s = s.Trim();
        (string suffix, double ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, ms) in units)
        {
            if (!s.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) continue;
            var number = s[..^suffix.Length];
            if (suffix == "s" && number.EndsWith('m')) continue; // "ms" handled first
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || !double.IsFinite(n)) return false;
            var total = n * ms;
            if (total > TimeSpan.MaxValue.TotalMilliseconds || total < TimeSpan.MinValue.TotalMilliseconds) return false;
            value = TimeSpan.FromMilliseconds(total);
            return true;
        }
        return s.Contains(':') && TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out value);
    }
}

internal static class JsonOut
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
    };

    public static readonly System.Text.Json.JsonSerializerOptions Indented = new(Options) { WriteIndented = true };

    public static readonly System.Text.Json.JsonWriterOptions WriterOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
