using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Mqtt.Engine;

/// <summary>Limits on retained messages (0: no limit). Payload bytes are counted, not topic or properties.</summary>
internal sealed record RetainedLimits(int MaxMessages, long MaxBytes, int MaxMessagesPerClient, long MaxBytesPerClient);

/// <summary>
/// Bytes of the retained store in total and count and bytes per publishing client (a message belongs to the client
/// that retained it; a message replaced by another client moves to that client). Not thread-safe: the store calls it
/// under its write lock.
/// </summary>
internal sealed class RetainedUsage
{
    private readonly Dictionary<string, (int Count, long Bytes)> _perClient = new(StringComparer.Ordinal);
    private long _totalBytes;

    public long TotalBytes => Volatile.Read(ref _totalBytes);

    /// <summary>The limit that storing <paramref name="incoming"/> over <paramref name="existing"/> would exceed, or null.</summary>
    public string? Exceeds(MqttApplicationMessage? existing, MqttApplicationMessage incoming, int count, RetainedLimits limits)
    {
        long bytes = incoming.Payload.Length;
        var replacedBytes = existing?.Payload.Length ?? 0;
        if (limits.MaxMessages > 0 && existing is null && count >= limits.MaxMessages)
        {
            return LimitMetrics.Limits.RetainedMessages;
        }
        if (limits.MaxBytes > 0 && _totalBytes - replacedBytes + bytes > limits.MaxBytes)
        {
            return LimitMetrics.Limits.RetainedBytes;
        }
        if (incoming.PublisherClientId is not { } client)
        {
            return null;
        }
        var (clientCount, clientBytes) = _perClient.GetValueOrDefault(client);
        var sameOwner = existing is not null && existing.PublisherClientId == client;
        if (limits.MaxMessagesPerClient > 0 && !sameOwner && clientCount >= limits.MaxMessagesPerClient)
        {
            return LimitMetrics.Limits.RetainedMessagesPerClient;
        }
        if (limits.MaxBytesPerClient > 0 && clientBytes - (sameOwner ? replacedBytes : 0) + bytes > limits.MaxBytesPerClient)
        {
            return LimitMetrics.Limits.RetainedBytesPerClient;
        }
        return null;
    }

    public void Add(MqttApplicationMessage message)
    {
        Volatile.Write(ref _totalBytes, _totalBytes + message.Payload.Length);
        if (message.PublisherClientId is { } client)
        {
            var (count, bytes) = _perClient.GetValueOrDefault(client);
            _perClient[client] = (count + 1, bytes + message.Payload.Length);
        }
    }

    public void Remove(MqttApplicationMessage message)
    {
        Volatile.Write(ref _totalBytes, _totalBytes - message.Payload.Length);
        if (message.PublisherClientId is { } client && _perClient.TryGetValue(client, out var usage))
        {
            if (usage.Count <= 1)
            {
                _perClient.Remove(client);
            }
            else
            {
                _perClient[client] = (usage.Count - 1, usage.Bytes - message.Payload.Length);
            }
        }
    }
}
