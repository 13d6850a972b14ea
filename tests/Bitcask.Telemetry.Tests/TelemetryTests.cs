using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Bitcask.Inspection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Telemetry = Bitcask.Telemetry;

namespace Bitcask.TelemetryTests;

/// <summary>
/// The engine's Meter and ActivitySource ("Bitcask"), collected with MetricCollector. One class: its tests run one at a
/// time, so the process-wide instruments (group size, fsync) see only the store of the running test.
/// </summary>
public sealed class TelemetryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bitcask-otel-").FullName;
    private string Store => Path.Combine(_dir, "kv");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private List<CollectedMeasurement<T>> Mine<T>(MetricCollector<T> collector) where T : struct =>
        collector.GetMeasurementSnapshot().Where(m => Equals(m.Tags.GetValueOrDefault("db.namespace"), Store)).ToList();

    private static string Op<T>(CollectedMeasurement<T> m) where T : struct => (string)m.Tags["db.operation.name"]!;

    [Fact]
    public void Every_operation_records_its_duration_in_seconds_tagged_with_db_operation_name()
    {
        using var durations = new MetricCollector<double>(Telemetry.OperationDuration);
        using (var store = BitcaskStore.Open(Store))
        {
            store.Put("a", "1");
            store.Put("b"u8, "22"u8);
            store.Get("a"u8);
            store.Get("missing"u8);
            store.GetString("b");
            store.Delete("a");
            store.Write(new WriteBatch().Put("c", "3").Put("d", "4"));
            store.PutIfAbsent("e"u8, "5"u8);
            store.CompareAndSet("e"u8, 1, "6"u8); // wrong version: false, still an operation
            store.Increment("n"u8, 5);
            store.Update("b"u8, 0, (ReadOnlySpan<byte> current, EntryInfo? info, int _, out KeyUpdateAction action) =>
            {
                action = KeyUpdateAction.Keep;
                return 0;
            });
            store.Sync();
        }

        var mine = Mine(durations);
        var byOp = mine.GroupBy(Op).ToDictionary(g => g.Key, g => g.Count());
        // Increment and Update read the key first: their reads count as gets of their own.
        Assert.Equal(3 + 1 + 1, byOp["get"]);
        Assert.Equal(2, byOp["put"]);
        Assert.Equal(1, byOp["delete"]);
        Assert.Equal(1, byOp["batch"]);
        Assert.Equal(2, byOp["cas"]);
        Assert.Equal(1, byOp["increment"]);
        Assert.Equal(1, byOp["update"]);
        Assert.Equal(1, byOp["sync"]);
        Assert.All(mine, m =>
        {
            Assert.Equal("bitcask", m.Tags["db.system.name"]);
            Assert.InRange(m.Value, double.Epsilon, 60); // seconds: a real, positive duration, not ticks or milliseconds
        });
        Assert.Equal("s", Telemetry.OperationDuration.Unit);
        Assert.Equal("db.client.operation.duration", Telemetry.OperationDuration.Name);
        Assert.Equal("Bitcask", Telemetry.OperationDuration.Meter.Name);
    }

    [Fact]
    public void Operation_and_byte_counters_add_up_to_what_was_read_and_written()
    {
        using var operations = new MetricCollector<long>(Telemetry.Operations);
        using var read = new MetricCollector<long>(Telemetry.BytesRead);
        using var written = new MetricCollector<long>(Telemetry.BytesWritten);
        using (var store = BitcaskStore.Open(Store, new BitcaskOptions { CompressionThreshold = 0 }))
        {
            for (var i = 0; i < 10; i++) store.Put($"key{i}", new string('v', 100 + i));
            for (var i = 0; i < 10; i += 2) Assert.NotNull(store.Get(System.Text.Encoding.UTF8.GetBytes($"key{i}")));
            var buffer = new ArrayBufferWriter<byte>();
            Assert.True(store.TryGet("key9"u8, buffer));
            Assert.Null(store.Get("nope"u8));
            Assert.True(store.Delete("key0"));
        }

        var ops = Mine(operations).GroupBy(Op).ToDictionary(g => g.Key, g => g.Sum(m => m.Value));
        Assert.Equal(10, ops["put"]);
        Assert.Equal(7, ops["get"]);
        Assert.Equal(1, ops["delete"]);
        // Value bytes returned: keys 0,2,4,6,8 (100+i bytes each) and key9 (109); the miss returns none.
        Assert.Equal(100 + 102 + 104 + 106 + 108 + 109, Mine(read).Sum(m => m.Value));
        // Record bytes appended: at least key and value of every put, plus a header each.
        var puts = Mine(written).Where(m => Op(m) == "put").ToList();
        Assert.Equal(10, puts.Count);
        for (var i = 0; i < 10; i++) Assert.True(puts[i].Value > 4 + 100 + i, $"put {i} wrote {puts[i].Value} bytes");
        Assert.Single(Mine(written), m => Op(m) == "delete");
    }

    [Fact]
    public void Group_commit_records_one_size_per_group_and_the_sizes_add_up_to_the_writes()
    {
        using var sizes = new MetricCollector<int>(Telemetry.CommitGroupSize);
        using (var store = BitcaskStore.Open(Store, new BitcaskOptions { Durability = Durability.Flushed, CompactionEnabled = false }))
        {
            for (var i = 0; i < 10; i++) store.Put($"k{i}", "v");
            var alone = sizes.GetMeasurementSnapshot(clear: true);
            Assert.Equal(10, alone.Count); // one writer: every put leads a group of one
            Assert.All(alone, m => Assert.Equal(1, m.Value));

            Parallel.For(0, 8, t =>
            {
                for (var i = 0; i < 50; i++) store.Put($"t{t}-{i}", "v");
            });
            var together = sizes.GetMeasurementSnapshot(clear: true);
            Assert.Equal(400, together.Sum(m => m.Value)); // every write in exactly one group
            Assert.All(together, m => Assert.InRange(m.Value, 1, 400));
        }
    }

    [Fact]
    public void Fsync_durations_are_recorded_for_each_fdatasync_a_synced_write_makes()
    {
        using var fsyncs = new MetricCollector<double>(Telemetry.FsyncDuration);
        using (var store = BitcaskStore.Open(Store, new BitcaskOptions { Durability = Durability.Flushed, CompactionEnabled = false }))
        {
            store.Put("first", "v"); // creating the first segment syncs its header and the directory
            fsyncs.Clear();
            for (var i = 0; i < 5; i++) store.Put($"k{i}", "v");
            Assert.Empty(fsyncs.GetMeasurementSnapshot()); // Flushed: no fsync per write

            store.Sync();
            var afterSync = fsyncs.GetMeasurementSnapshot(clear: true);
            Assert.NotEmpty(afterSync);

            for (var i = 0; i < 5; i++) store.Put(System.Text.Encoding.UTF8.GetBytes($"s{i}"), "v"u8, new WriteOptions(Durability: Durability.Synced));
            var synced = fsyncs.GetMeasurementSnapshot(clear: true);
            Assert.True(synced.Count >= 5, $"5 synced writes from one thread made {synced.Count} fsyncs");
            Assert.All(afterSync.Concat(synced), m => Assert.InRange(m.Value, double.Epsilon, 60));
        }
    }

    [Fact]
    public void A_compaction_records_one_run_with_the_bytes_and_duration_its_result_reports()
    {
        using var runs = new MetricCollector<long>(Telemetry.CompactionRuns);
        using var bytesRead = new MetricCollector<long>(Telemetry.CompactionBytesRead);
        using var bytesWritten = new MetricCollector<long>(Telemetry.CompactionBytesWritten);
        using var duration = new MetricCollector<double>(Telemetry.CompactionDuration);
        using var store = BitcaskStore.Open(Store, new BitcaskOptions { CompactionEnabled = false, MaxSegmentBytes = 64 << 10 });
        for (var round = 0; round < 5; round++)
            for (var i = 0; i < 50; i++) store.Put($"k{i}", new string((char)('a' + round), 500));
        Assert.Empty(Mine(runs));

        var result = store.Compact();
        Assert.True(result.SegmentsIn > 0);
        Assert.Equal(1, Mine(runs).Sum(m => m.Value));
        Assert.Equal(result.BytesBefore, Mine(bytesRead).Single().Value);
        Assert.Equal(result.BytesAfter, Mine(bytesWritten).Single().Value);
        Assert.True(result.BytesAfter < result.BytesBefore);
        Assert.Equal(result.Duration.TotalSeconds, Mine(duration).Single().Value, 9);
    }

    [Fact]
    public void Observable_gauges_report_each_open_stores_keys_bytes_segments_and_keydir_until_it_closes()
    {
        using var keys = new MetricCollector<long>(null, "Bitcask", "bitcask.keys");
        using var live = new MetricCollector<long>(null, "Bitcask", "bitcask.bytes.live");
        using var dead = new MetricCollector<long>(null, "Bitcask", "bitcask.bytes.dead");
        using var segments = new MetricCollector<long>(null, "Bitcask", "bitcask.segments");
        using var keydir = new MetricCollector<long>(null, "Bitcask", "bitcask.keydir.bytes");
        var store = BitcaskStore.Open(Store, new BitcaskOptions { CompactionEnabled = false, MaxSegmentBytes = 16 << 10 });
        for (var i = 0; i < 40; i++) store.Put($"k{i}", new string('x', 300));
        for (var i = 0; i < 10; i++) store.Put($"k{i}", new string('y', 300)); // 10 dead records
        store.Delete("k39");
        var stats = store.GetStats();

        foreach (var c in new[] { keys, live, dead, segments, keydir }) c.RecordObservableInstruments();
        Assert.Equal(39, Mine(keys).Single().Value);
        Assert.Equal(stats.LiveBytes, Mine(live).Single().Value);
        Assert.Equal(stats.DeadBytes, Mine(dead).Single().Value);
        Assert.True(stats.DeadBytes > 10 * 300);
        Assert.Equal(stats.Segments.Count, Mine(segments).Single().Value);
        Assert.True(stats.Segments.Count > 1);
        Assert.Equal(stats.KeydirBytes, Mine(keydir).Single().Value);

        store.Dispose();
        keys.Clear();
        keys.RecordObservableInstruments();
        Assert.Empty(Mine(keys)); // a closed store is no longer reported
    }

    [Fact]
    public void Open_compaction_backup_and_repair_are_traced_and_gets_are_not()
    {
        var activities = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Bitcask",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (activities) activities.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);

        var backup = Path.Combine(_dir, "backup");
        using (var store = BitcaskStore.Open(Store, new BitcaskOptions { CompactionEnabled = false }))
        {
            for (var i = 0; i < 20; i++) store.Put($"k{i % 5}", $"v{i}");
            store.Get("k1"u8);
            store.Compact();
            store.Backup(backup);
            Assert.Throws<StoreLockedException>(() => BitcaskStore.Open(Store));
        }
        StoreInspector.Repair(Store);

        List<Activity> mine;
        lock (activities) mine = activities.Where(a => Equals(a.GetTagItem("db.namespace"), Store) || (a.GetTagItem("db.namespace") as string)?.StartsWith(Store, StringComparison.Ordinal) == true).ToList();
        // Two opens (one failed on the lock), then compaction, backup, repair: no span for the puts and the get. (Repair
        // reopens the store itself, so its own open may be traced as well.)
        var names = mine.Select(a => a.OperationName).ToList();
        Assert.Equal(1, names.Count(n => n == "bitcask.compact"));
        Assert.Equal(1, names.Count(n => n == "bitcask.backup"));
        Assert.Equal(1, names.Count(n => n == "bitcask.repair"));
        Assert.InRange(names.Count(n => n == "bitcask.open"), 2, 3);
        Assert.Equal(names.Count, names.Count(n => n is "bitcask.open" or "bitcask.compact" or "bitcask.backup" or "bitcask.repair"));
        var opens = mine.Where(a => a.OperationName == "bitcask.open").ToList();
        Assert.Single(opens, a => a.Status == ActivityStatusCode.Error && (string?)a.GetTagItem("error.type") == typeof(StoreLockedException).FullName);
        Assert.Single(opens, a => a.Status != ActivityStatusCode.Error && Equals(a.GetTagItem("bitcask.keys"), 0L));
        var compact = mine.Single(a => a.OperationName == "bitcask.compact");
        Assert.True((long)compact.GetTagItem("bitcask.bytes_after")! < (long)compact.GetTagItem("bitcask.bytes_before")!);
        Assert.Equal(20L, mine.Single(a => a.OperationName == "bitcask.backup").GetTagItem("bitcask.revision"));
        Assert.All(mine, a => Assert.Equal("bitcask", a.GetTagItem("db.system.name")));
    }

    [Fact]
    public void Without_a_listener_no_timestamp_is_taken_and_with_one_the_hot_paths_still_allocate_nothing()
    {
        Assert.Equal(0, Telemetry.Start()); // no collector in this test yet: nothing measured

        using var store = BitcaskStore.Open(Store, new BitcaskOptions { CompactionEnabled = false });
        var key = new byte[16];
        var value = new byte[100];
        var buffer = new ArrayBufferWriter<byte>(256);
        long seen = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Bitcask") l.EnableMeasurementEvents(instrument); },
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref seen));
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref seen));
        listener.SetMeasurementEventCallback<int>((_, _, _, _) => Interlocked.Increment(ref seen));
        listener.Start();
        Assert.NotEqual(0, Telemetry.Start());

        void Round()
        {
            for (var i = 0; i < 1000; i++)
            {
                BitConverter.TryWriteBytes(key, i % 200);
                store.Put(key, value);
                buffer.ResetWrittenCount();
                Assert.True(store.TryGet(key, buffer));
            }
        }
        for (var warm = 0; warm < 5; warm++) Round();
        var measuredBefore = Interlocked.Read(ref seen);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Round();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before); // TagList on the stack, no boxing
        Assert.True(Interlocked.Read(ref seen) - measuredBefore >= 2000 * 2, "the listener saw the puts and gets");
    }
}
