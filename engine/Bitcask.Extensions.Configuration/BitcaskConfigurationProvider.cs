using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Bitcask.Extensions.Configuration;

/// <summary>
/// Configuration from the keys of a <see cref="BitcaskStore"/> under a prefix: <c>config/Logging/LogLevel/Default</c>
/// (or <c>config/Logging:LogLevel:Default</c>) becomes <c>Logging:LogLevel:Default</c>; values are UTF-8 text (or
/// flattened JSON, <see cref="BitcaskConfigurationSource.FlattenJson"/>). Keys are case-insensitive.
/// </summary>
/// <remarks>
/// <para>Reload: the provider reads the store's revision, scans the prefix, then follows
/// <see cref="BitcaskStore.Watch"/> from the next revision, so no change between the load and the watch is missed. A
/// burst of changes is applied once, <see cref="BitcaskConfigurationSource.ReloadDelay"/> after its first change: a new
/// dictionary replaces the old one and the reload token fires (so <c>IOptionsMonitor&lt;T&gt;.OnChange</c> runs).</para>
/// <para>When the watch fails (store disposed, I/O error, revisions compacted away), the last good configuration stays
/// in place and the watch restarts after a back-off (<see cref="BitcaskConfigurationSource.RetryDelay"/> doubling up to
/// <see cref="BitcaskConfigurationSource.MaxRetryDelay"/>); after <see cref="RevisionCompactedException"/> it rescans (a
/// store it opened from a path is reopened first, so a read-only reader sees the writer's current state).</para>
/// <para>Thread-safety: safe for concurrent reads while it reloads (each reload publishes a new dictionary).</para>
/// </remarks>
public sealed class BitcaskConfigurationProvider : ConfigurationProvider, IDisposable
{
    private readonly BitcaskConfigurationSource _source;
    private readonly byte[] _prefix;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, byte[]> _raw = new(StringComparer.Ordinal); // store key -> value
    private BitcaskStore? _store;
    private bool _ownsStore;
    private long _next; // the next revision the watch must see
    private Task? _watch;
    private int _reloadPending;
    private bool _disposed;

    /// <summary>A provider reading what <paramref name="source"/> names.</summary>
    public BitcaskConfigurationProvider(BitcaskConfigurationSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if ((source.Store is null) == (source.Path is null))
            throw new ArgumentException("Set exactly one of BitcaskConfigurationSource.Store and BitcaskConfigurationSource.Path.", nameof(source));
        ArgumentNullException.ThrowIfNull(source.Prefix, nameof(source.Prefix));
        if (source.ReloadDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(source), source.ReloadDelay, "ReloadDelay must not be negative.");
        if (source.RetryDelay <= TimeSpan.Zero || source.MaxRetryDelay < source.RetryDelay)
            throw new ArgumentOutOfRangeException(nameof(source), source.RetryDelay, "RetryDelay must be positive and MaxRetryDelay at least RetryDelay.");
        _source = source;
        _prefix = Encoding.UTF8.GetBytes(source.Prefix);
    }

    /// <summary>The revision of the newest change the current configuration includes.</summary>
    public long LoadedRevision => Volatile.Read(ref _next) - 1;

    /// <summary>Loads the keys under the prefix (the first call), or publishes the state the watch keeps current (later
    /// calls), and starts following the store when <see cref="BitcaskConfigurationSource.ReloadOnChange"/> is set.</summary>
    public override void Load()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_store is null)
            {
                if (!OpenStore()) return; // optional and missing
                Rescan();
                if (_source.ReloadOnChange) _watch = Task.Run(() => FollowAsync(_stop.Token));
            }
            Data = Build();
        }
    }

    private bool OpenStore()
    {
        if (_source.Store is { } given)
        {
            _store = given;
            return true;
        }
        var path = _source.Path!;
        if (_source.Optional && !System.IO.Directory.Exists(path)) return false;
        _store = BitcaskStore.Open(path, _source.StoreOptions ?? new BitcaskOptions { ReadOnly = true });
        _ownsStore = true;
        return true;
    }

    /// <summary>Replaces the raw state by a scan at a known revision (under the gate).</summary>
    private void Rescan()
    {
        var store = _store!;
        var revision = store.Revision; // first: a change after it is replayed by the watch (applying it twice is harmless)
        _raw.Clear();
        foreach (var (key, value) in store.Scan(_prefix)) _raw[Encoding.UTF8.GetString(key)] = value;
        Volatile.Write(ref _next, revision + 1);
    }

    private async Task FollowAsync(CancellationToken ct)
    {
        var delay = _source.RetryDelay;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await foreach (var e in _store!.Watch(_prefix, Volatile.Read(ref _next), ct).ConfigureAwait(false))
                {
                    lock (_gate)
                    {
                        var key = Encoding.UTF8.GetString(e.Key);
                        if (e.Kind == WatchEventKind.Put) _raw[key] = e.Value!;
                        else _raw.Remove(key);
                        Volatile.Write(ref _next, e.Revision + 1);
                    }
                    delay = _source.RetryDelay;
                    ScheduleReload(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                try { _source.OnWatchError?.Invoke(ex); } catch { /* a failing callback must not stop the provider */ }
                try
                {
                    await Task.Delay(delay, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _source.MaxRetryDelay.Ticks));
                if (ex is RevisionCompactedException) TryRecover();
            }
        }
    }

    /// <summary>After revisions this provider had not seen were compacted away: reopen (a store it owns) and rescan.
    /// On failure the last good configuration stays and the next attempt comes after the back-off.</summary>
    private void TryRecover()
    {
        try
        {
            lock (_gate)
            {
                if (_disposed) return;
                if (_ownsStore)
                {
                    _store!.Dispose();
                    _store = null;
                    OpenStore();
                }
                Rescan();
                Data = Build();
            }
            OnReload();
        }
        catch (Exception ex)
        {
            try { _source.OnWatchError?.Invoke(ex); } catch { /* see above */ }
        }
    }

    private void ScheduleReload(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _reloadPending, 1) == 1) return; // a reload of this burst is already scheduled
        _ = Task.Run(async () =>
        {
            try
            {
                if (_source.ReloadDelay > TimeSpan.Zero) await Task.Delay(_source.ReloadDelay, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Volatile.Write(ref _reloadPending, 0);
            lock (_gate)
            {
                if (_disposed) return;
                Data = Build();
            }
            OnReload();
        }, CancellationToken.None);
    }

    /// <summary>A new dictionary from the raw state (under the gate).</summary>
    private Dictionary<string, string?> Build()
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (storeKey, value) in _raw)
        {
            var path = ToPath(storeKey);
            if (path.Length == 0) continue;
            if (_source.FlattenJson && TryFlatten(path, value, data)) continue;
            data[path] = Encoding.UTF8.GetString(value);
        }
        return data;
    }

    /// <summary>The configuration path of a store key: prefix trimmed, <c>/</c> and <c>:</c> as separators.</summary>
    internal string ToPath(string storeKey)
    {
        var rest = storeKey.AsSpan(_source.Prefix.Length);
        var sb = new StringBuilder(rest.Length);
        foreach (var segment in rest.ToString().Split(['/', ':'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (sb.Length > 0) sb.Append(ConfigurationPath.KeyDelimiter);
            sb.Append(segment);
        }
        return sb.ToString();
    }

    private static bool TryFlatten(string path, byte[] value, Dictionary<string, string?> data)
    {
        var text = value.AsSpan().TrimStart(" \t\r\n"u8);
        if (text.IsEmpty || (text[0] != (byte)'{' && text[0] != (byte)'[')) return false;
        try
        {
            using var doc = JsonDocument.Parse(value);
            var leaves = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            Flatten(path, doc.RootElement, leaves);
            foreach (var (k, v) in leaves) data[k] = v;
            return true;
        }
        catch (JsonException)
        {
            return false; // not JSON after all: taken as text
        }
    }

    private static void Flatten(string path, JsonElement element, Dictionary<string, string?> data)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var any = false;
                foreach (var p in element.EnumerateObject())
                {
                    Flatten(ConfigurationPath.Combine(path, p.Name), p.Value, data);
                    any = true;
                }
                if (!any) data[path] = null;
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray()) Flatten(ConfigurationPath.Combine(path, (i++).ToString(System.Globalization.CultureInfo.InvariantCulture)), item, data);
                if (i == 0) data[path] = null;
                break;
            case JsonValueKind.Null:
                data[path] = null;
                break;
            case JsonValueKind.String:
                data[path] = element.GetString();
                break;
            default:
                data[path] = element.GetRawText();
                break;
        }
    }

    /// <summary>Stops following the store and disposes the store when the provider opened it (from a path).</summary>
    public void Dispose()
    {
        Task? watch;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            watch = _watch;
        }
        _stop.Cancel();
        try { watch?.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { /* it ended */ }
        if (_ownsStore) _store?.Dispose();
        _stop.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{nameof(BitcaskConfigurationProvider)} ({_source.Path ?? "store"}, prefix '{_source.Prefix}')";
}
