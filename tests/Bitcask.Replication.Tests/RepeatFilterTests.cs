using Microsoft.Extensions.Logging;

namespace Bitcask.Replication.Tests;

public sealed class RepeatFilterTests
{
    [Fact]
    public void A_message_repeated_within_the_interval_is_passed_on_once_and_other_messages_still_pass()
    {
        var sink = new Sink();
        using var factory = new RepeatFilterLoggerFactory(new SinkFactory(sink), TimeSpan.FromMinutes(1));
        var log = factory.CreateLogger("DotNext.Raft");
#pragma warning disable CA2254, CA1848 // the template is the point of the test
        for (var i = 0; i < 50; i++)
            log.LogWarning("Member {Member} is unavailable", "127.0.0.1:" + i);
        log.LogWarning("Leader changed to {Leader}", "127.0.0.1:2");
#pragma warning restore CA2254, CA1848
        Assert.Equal(["Member 127.0.0.1:0 is unavailable", "Leader changed to 127.0.0.1:2"], sink.Lines);
    }

    private sealed class Sink { public List<string> Lines { get; } = []; }

    private sealed class SinkFactory(Sink sink) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new SinkLogger(sink);
        public void AddProvider(ILoggerProvider provider) { }
        public void Dispose() { }
    }

    private sealed class SinkLogger(Sink sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => sink.Lines.Add(formatter(state, exception));
    }
}
