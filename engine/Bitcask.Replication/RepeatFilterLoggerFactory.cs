using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bitcask.Replication;

/// <summary>Passes each distinct message (category, event, message template) on at most once per interval: while a
/// peer is down, DotNext reports the failed connection on every heartbeat. Thread-safe.</summary>
internal sealed class RepeatFilterLoggerFactory(ILoggerFactory inner, TimeSpan interval) : ILoggerFactory
{
    private readonly ConcurrentDictionary<string, long> _lastSeen = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName, inner.CreateLogger(categoryName));
    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);
    public void Dispose() { }

    internal static ILoggerFactory Wrap(ILoggerFactory? inner, TimeSpan interval) =>
        inner is null ? NullLoggerFactory.Instance : new RepeatFilterLoggerFactory(inner, interval);

    private bool Admit(string key)
    {
        var now = Environment.TickCount64;
        var ms = (long)interval.TotalMilliseconds;
        while (true)
        {
            if (!_lastSeen.TryGetValue(key, out var last))
            {
                if (_lastSeen.TryAdd(key, now)) return true;
                continue;
            }
            if (now - last < ms) return false;
            if (_lastSeen.TryUpdate(key, now, last)) return true;
        }
    }

    private sealed class Logger(RepeatFilterLoggerFactory owner, string category, ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);
        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel)) return;
            string template = state is IReadOnlyList<KeyValuePair<string, object?>> kv && kv.Count > 0 && kv[^1].Key == "{OriginalFormat}"
                ? kv[^1].Value?.ToString() ?? ""
                : typeof(TState).Name;
            if (owner.Admit($"{category}|{eventId.Id}|{template}|{exception?.GetType().Name}"))
                inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
