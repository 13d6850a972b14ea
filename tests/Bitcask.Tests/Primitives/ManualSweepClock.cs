using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Tests.Primitives;

/// <summary>
/// A <see cref="FakeTimeProvider"/>'s wall clock whose timers never fire: the store's expiry sweeper then runs only when a
/// test calls <c>SweepExpiredForTests()</c>, so a model knows exactly which keys and leases a sweep sees as expired (a
/// FakeTimeProvider's own timers would run sweeps inside <see cref="FakeTimeProvider.Advance"/>). Timestamps (durations)
/// come from the real stopwatch.
/// </summary>
internal sealed class ManualSweepClock(FakeTimeProvider clock) : TimeProvider
{
    public FakeTimeProvider Fake { get; } = clock;

    public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new NeverTimer();

    private sealed class NeverTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;
        public void Dispose() { }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
