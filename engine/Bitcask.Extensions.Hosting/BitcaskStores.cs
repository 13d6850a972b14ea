using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting;

/// <summary>
/// Owns every store the container registered: opens each once (at host start, or earlier at its first resolution) and
/// disposes them (sync and close) when the host stops or the container is disposed. Thread-safe.
/// </summary>
internal sealed class BitcaskStores(
    IEnumerable<BitcaskStoreRegistration> registrations,
    IOptionsMonitor<BitcaskStoreOptions> options,
    IServiceProvider services,
    ILoggerFactory? loggerFactory = null) : IAsyncDisposable, IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<BitcaskStore>> _stores = new(StringComparer.Ordinal);
    private readonly ILogger _logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("Bitcask.Extensions.Hosting");
    private int _disposed;

    public IReadOnlyList<BitcaskStoreRegistration> Registrations { get; } = registrations.DistinctBy(r => r.Name).ToList();

    /// <summary>The store registered under <paramref name="name"/>, opened on first use. A failed open throws, now and at every later call.</summary>
    public BitcaskStore Get(string name)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var registration = Registrations.FirstOrDefault(r => r.Name == name)
            ?? throw new InvalidOperationException($"No Bitcask store named '{name}' is registered; call services.AddBitcask(\"{name}\", ...).");
        return _stores.GetOrAdd(name, _ => new Lazy<BitcaskStore>(() => Open(registration), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    private BitcaskStore Open(BitcaskStoreRegistration registration)
    {
        var o = options.Get(registration.Name); // throws OptionsValidationException naming the bad value
        var engine = o.Engine;
        if (engine.LoggerFactory is null && loggerFactory is not null) engine = engine with { LoggerFactory = loggerFactory };
        if (ReferenceEquals(engine.TimeProvider, TimeProvider.System) && services.GetService(typeof(TimeProvider)) is TimeProvider clock)
            engine = engine with { TimeProvider = clock };
        var store = (o.Opener ?? BitcaskStore.Open)(o.Path!, engine);
        Log.Opened(_logger, registration.Display, store.Directory, engine.Durability, store.Count);
        return store;
    }

    /// <summary>Disposes (syncs and closes) every store that was opened; the first failure is rethrown after all were tried.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        List<Exception>? failures = null;
        foreach (var (name, lazy) in _stores)
        {
            if (!lazy.IsValueCreated) continue;
            try
            {
                await lazy.Value.DisposeAsync().ConfigureAwait(false);
                Log.Closed(_logger, Registrations.First(r => r.Name == name).Display);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.CloseFailed(_logger, Registrations.First(r => r.Name == name).Display, e);
                (failures ??= []).Add(e);
            }
        }
        if (failures is { Count: 1 }) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
        if (failures is not null) throw new AggregateException("Closing the Bitcask stores failed; their last writes may not be durable.", failures);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Opened {Store} at {Directory} ({Durability}, {Keys} keys)")]
    public static partial void Opened(ILogger logger, string store, string directory, Durability durability, long keys);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Closed {Store} (synced)")]
    public static partial void Closed(ILogger logger, string store);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Closing {Store} failed: its last writes may not be durable")]
    public static partial void CloseFailed(ILogger logger, string store, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "The Bitcask stores did not finish closing within the host's shutdown timeout; closing continues in the background (writes acknowledged in Flushed or Synced mode survive the process ending)")]
    public static partial void CloseTimedOut(ILogger logger);
}
