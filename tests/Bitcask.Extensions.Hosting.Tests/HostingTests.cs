using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting.Tests;

public sealed class HostingTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static HostApplicationBuilder Builder(Dictionary<string, string?>? config = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, EnvironmentName = "Test" });
        if (config is not null) builder.Configuration.AddInMemoryCollection(config);
        return builder;
    }

    [Fact]
    public async Task The_default_store_is_bound_from_the_Bitcask_section_and_opens_when_the_host_starts()
    {
        var path = _dir.Sub("kv");
        var builder = Builder(new() { ["Bitcask:Path"] = path, ["Bitcask:Durability"] = "Synced", ["Bitcask:MaxKeyBytes"] = "200" });
        builder.Services.AddBitcask();
        using var host = builder.Build();
        Assert.False(Directory.Exists(path)); // nothing opened by building the host

        await host.StartAsync();
        Assert.True(Directory.Exists(path));
        var store = host.Services.GetRequiredService<BitcaskStore>();
        Assert.Same(store, host.Services.GetRequiredKeyedService<BitcaskStore>(""));
        Assert.Equal(path, store.Directory);
        Assert.Equal(Durability.Synced, store.Options.Durability);
        Assert.Equal(200, store.Options.MaxKeyBytes);
        store.Put("k", "v");
        await host.StopAsync();
    }

    [Fact]
    public async Task Named_stores_are_keyed_services_each_from_its_own_section_and_code_overrides_configuration()
    {
        var builder = Builder(new()
        {
            ["Bitcask:orders:Path"] = _dir.Sub("orders"),
            ["Bitcask:orders:Durability"] = "Synced",
            ["Bitcask:sessions:Path"] = _dir.Sub("ignored"),
        });
        builder.Services.AddBitcask("orders", configure: null);
        builder.Services.AddBitcask("sessions", o =>
        {
            o.Path = _dir.Sub("sessions");
            o.Engine = o.Engine with { Durability = Durability.Buffered };
        });
        using var host = builder.Build();
        await host.StartAsync();

        var orders = host.Services.GetRequiredKeyedService<BitcaskStore>("orders");
        var sessions = host.Services.GetRequiredKeyedService<BitcaskStore>("sessions");
        Assert.NotSame(orders, sessions);
        Assert.Equal(_dir.Sub("orders"), orders.Directory);
        Assert.Equal(Durability.Synced, orders.Options.Durability);
        Assert.Equal(_dir.Sub("sessions"), sessions.Directory);
        Assert.Equal(Durability.Buffered, sessions.Options.Durability);
        Assert.Null(host.Services.GetService<BitcaskStore>()); // no default store was registered
        await host.StopAsync();
    }

    [Fact]
    public async Task Stopping_the_host_syncs_and_closes_the_store_so_another_open_sees_every_write()
    {
        var path = _dir.Sub("kv");
        var builder = Builder();
        builder.Services.AddBitcask(o => o.Path = path);
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredService<BitcaskStore>();
        for (var i = 0; i < 100; i++) store.Put($"k{i}", $"v{i}");
        Assert.Throws<StoreLockedException>(() => BitcaskStore.Open(path)); // held while the host runs

        await host.StopAsync();
        Assert.Throws<ObjectDisposedException>(() => store.Put("late", "x"));
        using var reopened = BitcaskStore.Open(path); // the lock was released
        Assert.Equal(100, reopened.Count);
        Assert.Equal("v99", reopened.GetString("k99"));
    }

    [Fact]
    public async Task An_invalid_option_fails_host_start_with_a_message_naming_the_option_and_value()
    {
        var builder = Builder(new() { ["Bitcask:Path"] = _dir.Sub("kv"), ["Bitcask:MaxSegmentBytes"] = "100" });
        builder.Services.AddBitcask();
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("MaxSegmentBytes", e.Message);
        Assert.Contains("100", e.Message);
        Assert.Contains("Bitcask", e.Message);
        Assert.False(Directory.Exists(_dir.Sub("kv")));
    }

    [Fact]
    public async Task A_missing_path_fails_host_start_naming_the_section_of_the_named_store()
    {
        var builder = Builder(new() { ["Bitcask:orders:Durability"] = "Synced" });
        builder.Services.AddBitcask("orders", configure: null);
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("Bitcask:orders:Path is required", e.Message);
    }

    [Fact]
    public async Task A_durability_that_does_not_exist_fails_host_start_naming_the_value()
    {
        var builder = Builder(new() { ["Bitcask:Path"] = _dir.Sub("kv"), ["Bitcask:Durability"] = "Fsync" });
        builder.Services.AddBitcask();
        using var host = builder.Build();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
        Assert.Contains("Fsync", e.Message);
        Assert.Contains("Durability", e.Message);
    }

    [Fact]
    public async Task A_store_that_cannot_open_fails_host_start_with_the_engines_exception()
    {
        var path = _dir.Sub("kv");
        using var holder = BitcaskStore.Open(path); // another writer holds the directory
        var builder = Builder();
        builder.Services.AddBitcask(o => o.Path = path);
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<StoreLockedException>(() => host.StartAsync());
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task The_store_logs_through_the_hosts_logger_factory()
    {
        var logs = new CapturingLoggerProvider();
        var builder = Builder();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Services.AddBitcask(o =>
        {
            o.Path = _dir.Sub("kv");
            o.Engine = o.Engine with { MaxSegmentBytes = 4096, MaxValueBytes = 1000 };
        });
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredService<BitcaskStore>();
        for (var i = 0; i < 20; i++) store.Put($"k{i}", new string('x', 500)); // seals segments: the engine logs it
        await host.StopAsync();

        Assert.Contains(logs.Lines, l => l.Category == "Bitcask.Extensions.Hosting" && l.Message.Contains("Opened the default Bitcask store", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Category == "Bitcask" && l.Message.Contains("sealed", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Message.Contains("Closed the default Bitcask store", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stop_honours_the_shutdown_timeout_when_the_final_sync_hangs()
    {
        var fs = new TestFileSystem();
        var logs = new CapturingLoggerProvider();
        var builder = Builder();
        builder.Logging.AddProvider(logs);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(300));
        builder.Services.AddBitcask(o =>
        {
            o.Path = _dir.Sub("kv");
            o.Opener = (path, options) => BitcaskStore.Open(path, options, fs);
        });
        using var host = builder.Build();
        await host.StartAsync();
        host.Services.GetRequiredService<BitcaskStore>().Put("k", "v");

        fs.HoldSyncs();
        try
        {
            // Without the timeout this would wait for the held fsync (60 s); it returns once the timeout passes.
            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(fs.Holding.IsSet, "the close never reached its fsync");
            Assert.Contains(logs.Lines, l => l.Level == LogLevel.Warning && l.Message.Contains("shutdown timeout", StringComparison.Ordinal));
        }
        finally
        {
            fs.Release();
        }
    }

    // ---------------------------------------------------------------- health

    private static Task<HealthCheckResult> Check(IServiceProvider services, string storeName = "")
    {
        var registration = BitcaskHealthCheck.Registration(storeName);
        var check = registration.Factory(services);
        return check.CheckHealthAsync(new HealthCheckContext { Registration = registration });
    }

    [Fact]
    public async Task Health_is_healthy_with_the_stores_figures_as_data()
    {
        var builder = Builder();
        builder.Services.AddBitcask("orders", o => o.Path = _dir.Sub("orders"));
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredKeyedService<BitcaskStore>("orders");
        for (var i = 0; i < 7; i++) store.Put($"k{i}", "value");

        var result = await Check(host.Services, "orders");
        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal(7L, result.Data["keys"]);
        Assert.Equal(store.GetStats().TotalBytes, result.Data["totalBytes"]);
        Assert.True((long)result.Data["liveBytes"] > 0);
        Assert.Equal(0L, result.Data["deadBytes"]);
        Assert.Equal("bitcask-orders", BitcaskHealthCheck.Registration("orders").Name);
        await host.StopAsync();
    }

    [Fact]
    public async Task Health_is_unhealthy_when_the_write_path_failed_with_disk_full()
    {
        var fs = new TestFileSystem();
        var builder = Builder();
        builder.Services.AddBitcask(o =>
        {
            o.Path = _dir.Sub("kv");
            o.Engine = o.Engine with { Durability = Durability.Synced };
            o.Opener = (path, options) => BitcaskStore.Open(path, options, fs);
        });
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredService<BitcaskStore>();
        store.Put("before", "ok");
        Assert.Equal(HealthStatus.Healthy, (await Check(host.Services)).Status);

        fs.FailWrites = true;
        Assert.ThrowsAny<IOException>(() => store.Put("k", "v"));
        fs.FailWrites = false;
        var result = await Check(host.Services);
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains("refuses writes", result.Description);
        Assert.Contains("No space left on device", result.Description);
        Assert.Equal(1L, result.Data["keys"]);
        await host.StopAsync(); // a poisoned store closes without a final write
        using var reopened = BitcaskStore.Open(_dir.Sub("kv")); // reopening is the cure: writes acknowledged before stay
        Assert.Equal("ok", reopened.GetString("before"));
    }

    [Fact]
    public async Task Health_is_degraded_when_dead_bytes_pass_the_fragmentation_threshold()
    {
        var builder = Builder(new() { ["Bitcask:DegradedFragmentation"] = "0.5", ["Bitcask:CompactionEnabled"] = "false" });
        builder.Services.AddBitcask(o => o.Path = _dir.Sub("kv"));
        using var host = builder.Build();
        await host.StartAsync();
        var store = host.Services.GetRequiredService<BitcaskStore>();
        Assert.False(store.Options.CompactionEnabled);
        store.Put("k", new string('a', 1000));
        Assert.Equal(HealthStatus.Healthy, (await Check(host.Services)).Status);
        for (var i = 0; i < 5; i++) store.Put("k", new string('b', 1000)); // 5 of 6 copies are dead

        var result = await Check(host.Services);
        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("Fragmentation", result.Description);
        Assert.True((double)result.Data["fragmentation"] > 0.5);
        Assert.True((long)result.Data["deadBytes"] > 4000);

        store.Compact();
        var after = await Check(host.Services);
        Assert.Equal(HealthStatus.Healthy, after.Status);
        Assert.True(after.Data.ContainsKey("lastCompactionDuration"));
        await host.StopAsync();
    }

    [Fact]
    public async Task Health_is_degraded_when_the_open_skipped_damaged_records()
    {
        var path = _dir.Sub("kv");
        var options = new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1000, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(path, options))
            for (var i = 0; i < 30; i++) store.Put($"k{i:00}", new string((char)('a' + i % 26), 400));
        // Damage a value byte in the oldest (sealed) segment; without its hint file the open scans and finds it.
        var segment = Directory.GetFiles(path).Where(f => !f.EndsWith(".hint", StringComparison.Ordinal) && !f.EndsWith(".lock", StringComparison.Ordinal))
            .Where(f => new FileInfo(f).Length > 1000).Order(StringComparer.Ordinal).First();
        foreach (var hint in Directory.GetFiles(path, "*.hint")) File.Delete(hint);
        var bytes = File.ReadAllBytes(segment);
        bytes[600] ^= 0xFF;
        File.WriteAllBytes(segment, bytes);

        var builder = Builder(new() { ["Bitcask:SkipDamagedRecords"] = "true" });
        builder.Services.AddBitcask(o => { o.Path = path; o.Engine = o.Engine with { MaxSegmentBytes = 4096, MaxValueBytes = 1000, CompactionEnabled = false }; });
        using var host = builder.Build();
        await host.StartAsync();
        var result = await Check(host.Services);
        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("damaged record", result.Description);
        Assert.True((int)result.Data["recoveryFindings"] >= 1);
        await host.StopAsync();
    }

    [Fact]
    public async Task Health_of_a_closed_store_is_unhealthy()
    {
        var builder = Builder();
        builder.Services.AddBitcask(o => o.Path = _dir.Sub("kv"));
        using var host = builder.Build();
        await host.StartAsync();
        var check = BitcaskHealthCheck.Registration().Factory(host.Services);
        await host.StopAsync();
        var result = await check.CheckHealthAsync(new HealthCheckContext { Registration = BitcaskHealthCheck.Registration() });
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains("closed", result.Description);
    }
}
