using System.Runtime.CompilerServices;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Bitcask;

/// <summary>
/// The engine's metrics and traces, through System.Diagnostics (no dependency): the <see cref="Meter"/> and the
/// <see cref="ActivitySource"/> named <c>Bitcask</c>. Instrument names follow the OpenTelemetry database conventions where
/// they fit (<c>db.client.operation.duration</c> in seconds with <c>db.system.name</c>, <c>db.operation.name</c> and
/// <c>db.namespace</c> = the store's directory); the rest are <c>bitcask.*</c>. Nothing is measured while no listener
/// is attached: every call site checks <see cref="Instrument.Enabled"/> (or <see cref="Start"/> returns 0) before it
/// takes a timestamp, and the tags live in a stack <see cref="TagList"/> (no allocation).
/// <para>Thread-safety: all members are safe to call concurrently.</para>
/// </summary>
internal static class Telemetry
{
    public const string Name = "Bitcask";
    public const string System = "bitcask";

    private static readonly string? Version =
        typeof(Telemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    public static readonly Meter Meter = new(Name, Version);
    public static readonly ActivitySource Source = new(Name, Version);

    // Operation names (db.operation.name).
    public const string Get = "get", Put = "put", Delete = "delete", Batch = "batch", Cas = "cas",
        CompareAndDelete = "compare_and_delete", Transaction = "transaction", Increment = "increment", Update = "update", Sync = "sync";

    // An embedded store answers in microseconds: finer buckets than the conventions' default (1 ms .. 10 s).
    private static readonly double[] SecondsBuckets =
        [0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public static readonly Histogram<double> OperationDuration = Meter.CreateHistogram("db.client.operation.duration", "s",
        "Duration of a store operation (get, put, delete, batch, cas, ...), from call to acknowledgement.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
    public static readonly Counter<long> Operations = Meter.CreateCounter<long>("bitcask.operations", "{operation}",
        "Store operations completed, by db.operation.name.");
    public static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("bitcask.bytes.read", "By",
        "Value bytes returned by reads.");
    public static readonly Counter<long> BytesWritten = Meter.CreateCounter<long>("bitcask.bytes.written", "By",
        "Encoded record bytes (keys, values, headers) appended by writes.");
    public static readonly Histogram<int> CommitGroupSize = Meter.CreateHistogram("bitcask.commit.group.size", "{request}",
        "Requests written together by one group-commit leader (one write call, one fdatasync in Synced mode).",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
    public static readonly Histogram<double> FsyncDuration = Meter.CreateHistogram("bitcask.fsync.duration", "s",
        "Duration of each fdatasync the engine issues (segments, hint files, compaction output).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
    public static readonly Counter<long> CompactionRuns = Meter.CreateCounter<long>("bitcask.compaction.runs", "{run}",
        "Compactions that merged segments (background and explicit).");
    public static readonly Counter<long> CompactionBytesRead = Meter.CreateCounter<long>("bitcask.compaction.bytes.read", "By",
        "Bytes of the segments compactions merged.");
    public static readonly Counter<long> CompactionBytesWritten = Meter.CreateCounter<long>("bitcask.compaction.bytes.written", "By",
        "Bytes of the segments compactions wrote (what the merged segments' live records took).");
    public static readonly Histogram<double> CompactionDuration = Meter.CreateHistogram<double>("bitcask.compaction.duration", "s",
        "Duration of each compaction that merged segments.");

    // Observable gauges: read from every open store when a listener collects. Weak: a store never disposed is not kept alive.
    private static readonly ConditionalWeakTable<BitcaskStore, object> OpenStores = new();
    private static readonly object Marker = new();

    static Telemetry()
    {
        Meter.CreateObservableGauge("bitcask.keys", () => Observe(s => s.LiveKeys), "{key}", "Live keys.");
        Meter.CreateObservableGauge("bitcask.bytes.live", () => Observe(s => s.LiveBytes), "By", "Bytes of the newest record of every live key.");
        Meter.CreateObservableGauge("bitcask.bytes.dead", () => Observe(s => s.DeadBytes), "By", "Bytes of overwritten, deleted and expired records not yet compacted away.");
        Meter.CreateObservableGauge("bitcask.segments", () => Observe(s => s.Segments.Count), "{segment}", "Segment files.");
        Meter.CreateObservableGauge("bitcask.keydir.bytes", () => Observe(s => s.KeydirBytes), "By", "Estimated memory of the in-memory key directory.");
    }

    public static void Register(BitcaskStore store) => OpenStores.AddOrUpdate(store, Marker);
    public static void Unregister(BitcaskStore store) => OpenStores.Remove(store);

    private static IEnumerable<Measurement<long>> Observe(Func<StoreStats, long> pick)
    {
        foreach (var (store, _) in OpenStores)
        {
            StoreStats stats;
            try
            {
                stats = store.GetStats();
            }
            catch (ObjectDisposedException)
            {
                continue;
            }
            yield return new Measurement<long>(pick(stats), new KeyValuePair<string, object?>("db.namespace", store.Directory));
        }
    }

    /// <summary>A timestamp when any operation instrument has a listener, else 0 (then <see cref="Done"/> does nothing).</summary>
    public static long Start() =>
        OperationDuration.Enabled || Operations.Enabled || BytesRead.Enabled || BytesWritten.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Records one completed operation begun at <paramref name="start"/> (from <see cref="Start"/>).</summary>
    public static void Done(long start, string store, string operation, long bytesRead = 0, long bytesWritten = 0)
    {
        if (start == 0) return;
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var tags = new TagList
        {
            { "db.system.name", System },
            { "db.operation.name", operation },
            { "db.namespace", store },
        };
        OperationDuration.Record(elapsed, tags);
        Operations.Add(1, tags);
        if (bytesRead > 0) BytesRead.Add(bytesRead, tags);
        if (bytesWritten > 0) BytesWritten.Add(bytesWritten, tags);
    }

    /// <summary>As <see cref="Done"/>, once <paramref name="pending"/> completes successfully (only called when measuring).</summary>
    public static async ValueTask DoneAsync(ValueTask pending, long start, string store, string operation, long bytesWritten)
    {
        await pending.ConfigureAwait(false);
        Done(start, store, operation, bytesWritten: bytesWritten);
    }

    /// <summary>Records a compaction that merged segments.</summary>
    public static void Compacted(string store, CompactionResult result)
    {
        if (result.SegmentsIn == 0 || result.Cancelled) return;
        var tags = new TagList { { "db.system.name", System }, { "db.namespace", store } };
        if (CompactionRuns.Enabled) CompactionRuns.Add(1, tags);
        if (CompactionBytesRead.Enabled) CompactionBytesRead.Add(result.BytesBefore, tags);
        if (CompactionBytesWritten.Enabled) CompactionBytesWritten.Add(result.BytesAfter, tags);
        if (CompactionDuration.Enabled) CompactionDuration.Record(result.Duration.TotalSeconds, tags);
    }

    /// <summary>Starts a trace span (null when nobody listens) for open, compaction, backup or repair of <paramref name="store"/>.</summary>
    public static Activity? StartActivity(string name, string store)
    {
        var activity = Source.StartActivity(name, ActivityKind.Internal);
        if (activity is null) return null;
        activity.SetTag("db.system.name", System);
        activity.SetTag("db.namespace", store);
        return activity;
    }

    /// <summary>Marks <paramref name="activity"/> failed; returns false (for use in an exception filter).</summary>
    public static bool Failed(Activity? activity, Exception e)
    {
        if (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            activity.SetTag("error.type", e.GetType().FullName);
        }
        return false;
    }
}
