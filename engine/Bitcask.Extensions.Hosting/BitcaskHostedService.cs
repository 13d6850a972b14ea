using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bitcask.Extensions.Hosting;

/// <summary>
/// Opens every registered store when the host starts (in <see cref="StartingAsync"/>, before any hosted service's
/// <c>StartAsync</c>, so they can use the stores; a failed open fails the start with its exception) and disposes them
/// when it stops (in <see cref="StoppedAsync"/>, after every hosted service's <c>StopAsync</c>, so their last writes
/// are synced), waiting no longer than the host's shutdown timeout.
/// </summary>
internal sealed class BitcaskHostedService(BitcaskStores stores, ILoggerFactory? loggerFactory = null) : IHostedLifecycleService
{
    private readonly ILogger _logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("Bitcask.Extensions.Hosting");

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        foreach (var registration in stores.Registrations)
        {
            cancellationToken.ThrowIfCancellationRequested();
            stores.Get(registration.Name);
        }
        return Task.CompletedTask;
    }

    // A host without lifecycle support calls only StartAsync/StopAsync: opening is idempotent.
    public Task StartAsync(CancellationToken cancellationToken) => StartingAsync(cancellationToken);
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        var closing = Task.Run(async () => await stores.DisposeAsync().ConfigureAwait(false), CancellationToken.None);
        try
        {
            await closing.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.CloseTimedOut(_logger);
        }
    }
}
