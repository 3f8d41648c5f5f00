namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The queue limits every session of a broker shares, and the global count of queued messages and bytes they are
/// checked against (<see cref="MqttBrokerOptions.MaxQueuedBytesTotal"/>). Sessions add and remove what they queue;
/// the totals feed the queue gauges.
/// </summary>
internal sealed class QueueBudget
{
    private long _bytes;
    private long _messages;

    public QueueBudget(MqttBrokerOptions options, TimeProvider time)
    {
        MaxMessages = Math.Max(1, options.MaxQueuedMessagesPerSession);
        MaxBytes = options.MaxQueuedBytesPerSession;
        MaxTotalBytes = options.MaxQueuedBytesTotal;
        SlowMaxBytes = options.SlowSubscriberMaxQueuedBytes;
        SlowTimeout = options.SlowSubscriberTimeout;
        Policy = options.SlowSubscriberPolicy;
        Time = time;
    }

    /// <summary>Defaults with a given message limit (tests and benchmarks that build sessions directly).</summary>
    public static QueueBudget WithMessageLimit(int maxMessages) =>
        new(new MqttBrokerOptions { MaxQueuedMessagesPerSession = maxMessages }, TimeProvider.System);

    public int MaxMessages { get; }
    public long MaxBytes { get; }
    public long MaxTotalBytes { get; }
    public long SlowMaxBytes { get; }
    public TimeSpan SlowTimeout { get; }
    public SlowSubscriberPolicy Policy { get; }
    public TimeProvider Time { get; }

    public long QueuedBytes => Volatile.Read(ref _bytes);
    public long QueuedMessages => Volatile.Read(ref _messages);

    /// <summary>Above the global budget every queue that holds anything counts as full.</summary>
    public bool OverTotal => Volatile.Read(ref _bytes) >= MaxTotalBytes;

    public void Add(int messages, long bytes)
    {
        if (messages != 0)
        {
            Interlocked.Add(ref _messages, messages);
            Interlocked.Add(ref _bytes, bytes);
        }
    }
}
