using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Tests.Support;

/// <summary>Captures every log entry (all levels) so tests can assert what was logged, and how often.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _entries = new();

    public IReadOnlyList<CapturedLog> Entries => _entries.ToArray();

    public IReadOnlyList<CapturedLog> WithEventId(int eventId) => _entries.Where(e => e.EventId.Id == eventId).ToArray();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>Waits (bounded) until <paramref name="predicate"/> matches an entry; the server may log after the client saw the outcome.</summary>
    public async Task<CapturedLog> WaitForAsync(Func<CapturedLog, bool> predicate, TimeSpan? timeout = null)
    {
        // A bound for a loaded 2-core CI machine, not a speed requirement: a passing wait returns as soon as the entry appears.
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var match = _entries.FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("no matching log entry; captured:\n" + string.Join("\n", _entries.Select(e => e.ToString())));
            }
            await Task.Delay(20);
        }
    }

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state as IReadOnlyList<KeyValuePair<string, object?>>;
            owner._entries.Enqueue(new CapturedLog(category, logLevel, eventId, formatter(state, exception),
                values?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, object?>(), exception));
        }
    }
}

public sealed record CapturedLog(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> Values, Exception? Exception)
{
    public string? Value(string name) => Values.TryGetValue(name, out var value) ? value?.ToString() : null;

    public override string ToString() => $"[{Level} {EventId.Id} {Category}] {Message}";
}
