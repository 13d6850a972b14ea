using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting;

/// <summary>
/// Reports a store's health from <see cref="BitcaskStore.GetStats"/>: <see cref="HealthStatus.Unhealthy"/> when the
/// write path is poisoned (a failed write or fsync, e.g. disk full or an I/O error: the store refuses writes until it
/// is reopened) or the store is closed; <see cref="HealthStatus.Degraded"/> when the open found damaged records
/// (<see cref="StoreStats.RecoveryFindings"/>) or the dead bytes exceed the fragmentation threshold; otherwise
/// <see cref="HealthStatus.Healthy"/>. The result's data: keys, bytes (total, live, dead), fragmentation, segments,
/// keydir bytes, whether a compaction runs, and the last compaction. Thread-safe.
/// </summary>
/// <example><code>
/// builder.Services.AddHealthChecks().Add(BitcaskHealthCheck.Registration());           // the default store
/// builder.Services.AddHealthChecks().Add(BitcaskHealthCheck.Registration("orders"));   // a named store
/// </code></example>
public sealed class BitcaskHealthCheck : IHealthCheck
{
    private readonly BitcaskStore _store;
    private readonly double _degradedFragmentation;

    /// <summary>A check of <paramref name="store"/>, Degraded above 80% dead bytes.</summary>
    public BitcaskHealthCheck(BitcaskStore store) : this(store, 0.8) { }

    /// <summary>A check of <paramref name="store"/>, Degraded when its fragmentation (dead / total bytes) exceeds <paramref name="degradedFragmentation"/> (0 to 1).</summary>
    public BitcaskHealthCheck(BitcaskStore store, double degradedFragmentation)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (double.IsNaN(degradedFragmentation) || degradedFragmentation is < 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(degradedFragmentation), degradedFragmentation, "The fragmentation threshold must be between 0 and 1.");
        _store = store;
        _degradedFragmentation = degradedFragmentation;
    }

    /// <summary>
    /// A registration (for <c>services.AddHealthChecks().Add(...)</c>) that checks the store registered by
    /// <c>AddBitcask</c> under <paramref name="storeName"/> ("" = the default store) with its options'
    /// <see cref="BitcaskStoreOptions.DegradedFragmentation"/>.
    /// </summary>
    /// <param name="storeName">The name given to <c>AddBitcask</c>; empty for the default store.</param>
    /// <param name="registrationName">The health check's name; default "bitcask" or "bitcask-{storeName}".</param>
    /// <param name="tags">Tags for filtering health checks.</param>
    /// <returns>The registration; failures are reported as <see cref="HealthStatus.Unhealthy"/>.</returns>
    public static HealthCheckRegistration Registration(string storeName = "", string? registrationName = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(storeName);
        return new HealthCheckRegistration(
            registrationName ?? (storeName.Length == 0 ? "bitcask" : $"bitcask-{storeName}"),
            sp => new BitcaskHealthCheck(
                sp.GetRequiredKeyedService<BitcaskStore>(storeName),
                sp.GetRequiredService<IOptionsMonitor<BitcaskStoreOptions>>().Get(storeName).DegradedFragmentation),
            failureStatus: HealthStatus.Unhealthy,
            tags: tags);
    }

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        StoreStats stats;
        try
        {
            stats = _store.GetStats();
        }
        catch (ObjectDisposedException e)
        {
            return Task.FromResult(new HealthCheckResult(context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy,
                $"The store at {_store.Directory} is closed.", e));
        }

        var data = new Dictionary<string, object>
        {
            ["directory"] = _store.Directory,
            ["keys"] = stats.LiveKeys,
            ["totalBytes"] = stats.TotalBytes,
            ["liveBytes"] = stats.LiveBytes,
            ["deadBytes"] = stats.DeadBytes,
            ["fragmentation"] = stats.Fragmentation,
            ["segments"] = stats.Segments.Count,
            ["keydirBytes"] = stats.KeydirBytes,
            ["readOnly"] = stats.ReadOnly,
            ["compactionRunning"] = stats.CompactionRunning,
            ["recoveryFindings"] = stats.RecoveryFindings.Count,
        };
        if (stats.LastCompaction is { } last)
        {
            data["lastCompactionDuration"] = last.Duration;
            data["lastCompactionBytesBefore"] = last.BytesBefore;
            data["lastCompactionBytesAfter"] = last.BytesAfter;
        }

        HealthCheckResult result;
        if (stats.WriteFailure is { } failure)
        {
            result = new HealthCheckResult(context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy,
                $"The write path failed and the store refuses writes until it is reopened: {failure}", data: data);
        }
        else if (stats.RecoveryFindings.Count > 0)
        {
            var first = stats.RecoveryFindings[0];
            result = HealthCheckResult.Degraded(
                $"Opening the store found {stats.RecoveryFindings.Count} damaged record(s), e.g. {first}; run `bitcask verify`.", data: data);
        }
        else if (stats.TotalBytes > 0 && stats.Fragmentation > _degradedFragmentation)
        {
            result = HealthCheckResult.Degraded(
                $"Fragmentation {stats.Fragmentation:P0} is above the threshold {_degradedFragmentation:P0} ({stats.DeadBytes} dead of {stats.TotalBytes} bytes); compaction is {(stats.CompactionRunning ? "running" : "not running")}.",
                data: data);
        }
        else
        {
            result = HealthCheckResult.Healthy($"{stats.LiveKeys} keys, {stats.TotalBytes} bytes in {stats.Segments.Count} segment(s).", data);
        }
        return Task.FromResult(result);
    }
}
