using Bitcask.Extensions.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Tests;

public sealed class FeatureOptions
{
    public bool NewCheckout { get; set; }
    public int MaxItems { get; set; }
    public string? Banner { get; set; }
}

public sealed class ConfigurationTests : IDisposable
{
    private readonly TempDirectory _dir = new("config");

    public void Dispose() => _dir.Dispose();

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var i = 0; i < 1000 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition(), what);
    }

    [Fact]
    public void Keys_under_the_prefix_become_configuration_paths_case_insensitively()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        store.Put("config/Logging/LogLevel/Default", "Warning");
        store.Put("config/Features:NewCheckout", "true");
        store.Put("config/mixed/Path:deep", "x");
        store.Put("other/Ignored", "no");
        var root = new ConfigurationBuilder().AddBitcask(store, "config/").Build();
        try
        {
            Assert.Equal("Warning", root["Logging:LogLevel:Default"]);
            Assert.Equal("Warning", root["logging:loglevel:default"]);
            Assert.Equal("true", root["FEATURES:newcheckout"]);
            Assert.Equal("x", root["mixed:Path:deep"]);
            Assert.Null(root["Ignored"]);
            Assert.Null(root["other:Ignored"]);
            Assert.Equal(["Features", "Logging", "mixed"], root.GetChildren().Select(c => c.Key).Order(StringComparer.Ordinal));
        }
        finally
        {
            (root as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void JSON_values_are_flattened_when_asked_and_taken_as_text_otherwise()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        store.Put("config/Db", """{"Host":"db1","Ports":[5432,5433],"Tls":{"On":true}}""");
        store.Put("config/Plain", "{not json");
        var flat = new ConfigurationBuilder().AddBitcask(store, configure: s => { s.FlattenJson = true; s.ReloadOnChange = false; }).Build();
        Assert.Equal("db1", flat["Db:Host"]);
        Assert.Equal("5433", flat["Db:Ports:1"]);
        Assert.Equal("true", flat["Db:Tls:On"]);
        Assert.Equal("{not json", flat["Plain"]);
        var raw = new ConfigurationBuilder().AddBitcask(store, configure: s => s.ReloadOnChange = false).Build();
        Assert.Null(raw["Db:Host"]);
        Assert.StartsWith("{\"Host\"", raw["Db"]);
        ((IDisposable)flat).Dispose();
        ((IDisposable)raw).Dispose();
    }

    [Fact]
    public async Task A_change_in_the_store_fires_IOptionsMonitor_OnChange_with_the_new_values()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        store.Put("config/Features/NewCheckout", "false");
        store.Put("config/Features/MaxItems", "10");
        var configuration = new ConfigurationBuilder().AddBitcask(store, "config/", s => s.ReloadDelay = TimeSpan.FromMilliseconds(20)).Build();
        var services = new ServiceCollection();
        services.AddOptions<FeatureOptions>().Bind(configuration.GetSection("Features"));
        await using var sp = services.BuildServiceProvider();
        var monitor = sp.GetRequiredService<IOptionsMonitor<FeatureOptions>>();
        Assert.False(monitor.CurrentValue.NewCheckout);
        var seen = new List<FeatureOptions>();
        using var subscription = monitor.OnChange(o => { lock (seen) seen.Add(o); });

        store.Put("config/Features/NewCheckout", "true");
        store.Put("config/Features/MaxItems", "25");
        await Until(() => { lock (seen) return seen.Any(o => o.NewCheckout && o.MaxItems == 25); }, "OnChange with both changes");
        Assert.True(monitor.CurrentValue.NewCheckout);
        Assert.Equal(25, monitor.CurrentValue.MaxItems);

        store.Delete("config/Features/MaxItems");
        await Until(() => monitor.CurrentValue.MaxItems == 0, "the deleted key leaves the configuration");
        ((IDisposable)configuration).Dispose();
    }

    [Fact]
    public async Task A_change_written_right_after_the_load_is_not_missed()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        for (var round = 0; round < 50; round++)
        {
            store.Put("config/Round", round.ToString());
            var configuration = new ConfigurationBuilder().AddBitcask(store, configure: s => s.ReloadDelay = TimeSpan.Zero).Build();
            store.Put("config/Round", $"after {round}"); // before the watch task has necessarily started
            await Until(() => configuration["Round"] == $"after {round}", $"round {round}: the change after the load, saw {configuration["Round"]}");
            ((IDisposable)configuration).Dispose();
        }
    }

    [Fact]
    public async Task A_burst_of_changes_is_applied_in_one_reload()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        store.Put("config/N", "0");
        var configuration = new ConfigurationBuilder().AddBitcask(store, configure: s => s.ReloadDelay = TimeSpan.FromSeconds(1)).Build();
        var reloads = 0;
        Microsoft.Extensions.Primitives.ChangeToken.OnChange(configuration.GetReloadToken, () => Interlocked.Increment(ref reloads));
        for (var i = 1; i <= 50; i++) store.Put("config/N", i.ToString());
        await Until(() => configuration["N"] == "50", "the last value of the burst");
        await Task.Delay(1500); // no second reload follows
        Assert.Equal(1, Volatile.Read(ref reloads));
        ((IDisposable)configuration).Dispose();
    }

    [Fact]
    public async Task A_path_is_opened_read_only_beside_the_writer_and_follows_its_writes()
    {
        using var writer = BitcaskStore.Open(_dir.Path);
        writer.Put("config/Banner", "hello");
        writer.Sync();
        var configuration = new ConfigurationBuilder().AddBitcask(_dir.Path, "config/", s => s.ReloadDelay = TimeSpan.FromMilliseconds(20)).Build();
        Assert.Equal("hello", configuration["Banner"]);
        writer.Put("config/Banner", "changed by the writer");
        writer.Put("config/Added", "new key");
        await Until(() => configuration["Banner"] == "changed by the writer" && configuration["Added"] == "new key", "the read-only reader sees the writer's changes");
        ((IDisposable)configuration).Dispose();
        writer.Put("config/Banner", "the writer is unaffected");
    }

    [Fact]
    public async Task A_failed_watch_backs_off_retries_and_keeps_the_last_good_configuration()
    {
        var store = BitcaskStore.Open(_dir.Path);
        store.Put("config/Banner", "last good");
        var errors = new List<Exception>();
        var configuration = new ConfigurationBuilder().AddBitcask(store, configure: s =>
        {
            s.RetryDelay = TimeSpan.FromMilliseconds(20);
            s.MaxRetryDelay = TimeSpan.FromMilliseconds(80);
            s.OnWatchError = e => { lock (errors) errors.Add(e); };
        }).Build();
        store.Dispose(); // the watch fails from now on
        await Until(() => { lock (errors) return errors.Count >= 3; }, "the watch is retried after each failure");
        Assert.Equal("last good", configuration["Banner"]);
        lock (errors) Assert.All(errors, e => Assert.IsType<ObjectDisposedException>(e));
        ((IDisposable)configuration).Dispose();
    }

    [Fact]
    public void An_optional_missing_path_gives_an_empty_configuration_and_a_required_one_throws()
    {
        var missing = Path.Combine(_dir.Path, "nope");
        var configuration = new ConfigurationBuilder().AddBitcask(missing, configure: s => s.Optional = true).Build();
        Assert.Empty(configuration.AsEnumerable());
        Assert.ThrowsAny<Exception>(() => new ConfigurationBuilder().AddBitcask(missing).Build());
    }

    [Fact]
    public void A_source_must_name_a_store_or_a_path()
    {
        var ex = Assert.Throws<ArgumentException>(() => new BitcaskConfigurationProvider(new BitcaskConfigurationSource()));
        Assert.Contains("Store", ex.Message);
    }
}
