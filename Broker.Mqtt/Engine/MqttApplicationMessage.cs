using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// An application message once accepted by the broker. Immutable and shared: the payload is copied once out of
/// the connection's input buffer into one array, and that array is referenced by the retained store and by every
/// subscriber's queue.
/// </summary>
internal sealed class MqttApplicationMessage
{
    public MqttApplicationMessage(string topic, byte[] payload, MqttQos qos, bool retain)
    {
        Topic = topic;
        Payload = payload;
        Qos = qos;
        Retain = retain;
    }

    private int _queuedSize;

    public string Topic { get; }
    public byte[] Payload { get; }
    public MqttQos Qos { get; }
    public bool Retain { get; }

    /// <summary>A reply of an <see cref="Abstractions.IReservedTopicHandler"/>, queued for its requester alone: not
    /// subject to receive rights (the requester's Response Topic is not a routed topic).</summary>
    public bool IsDirectReply { get; init; }

    /// <summary>ClientId of the publisher, for No Local (5.0 §3.8.3.1).</summary>
    public string? PublisherClientId { get; init; }

    /// <summary>Absolute expiry from the 5.0 Message Expiry Interval; null = never expires.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    // 5.0 properties forwarded unaltered [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-20].
    public byte? PayloadFormatIndicator { get; init; }
    public string? ContentType { get; init; }
    public string? ResponseTopic { get; init; }
    public ReadOnlyMemory<byte>? CorrelationData { get; init; }
    /// <summary>Shared by every delivery of the message and never modified.</summary>
    public List<KeyValuePair<string, string>>? UserProperties { get; init; }

    public bool HasProperties =>
        PayloadFormatIndicator is not null || ContentType is not null || ResponseTopic is not null
        || CorrelationData is not null || UserProperties is not null || ExpiresAt is not null;

    /// <summary>What one queued copy is charged against the byte limits: payload, topic, properties and a fixed
    /// overhead for the entry. Computed once (races are benign: every thread computes the same value).</summary>
    public int QueuedSize
    {
        get
        {
            var size = _queuedSize;
            if (size == 0)
            {
                size = 64 + Payload.Length + Topic.Length * 2 + (CorrelationData?.Length ?? 0) + (ContentType?.Length ?? 0) * 2
                    + (ResponseTopic?.Length ?? 0) * 2;
                if (UserProperties is { } user)
                {
                    foreach (var pair in user)
                    {
                        size += (pair.Key.Length + pair.Value.Length) * 2 + 16;
                    }
                }
                _queuedSize = size;
            }
            return size;
        }
    }

    public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } at && at <= now;

    /// <summary>Builds the message from the properties of a PUBLISH or a Will; copies what may reference the input buffer.</summary>
    public static MqttApplicationMessage Create(string topic, byte[] payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DateTimeOffset now)
    {
        if (properties is null)
        {
            return new MqttApplicationMessage(topic, payload, qos, retain) { PublisherClientId = publisherClientId };
        }

        return new MqttApplicationMessage(topic, payload, qos, retain)
        {
            PublisherClientId = publisherClientId,
            ExpiresAt = properties.MessageExpiryInterval is { } seconds ? now.AddSeconds(seconds) : null,
            PayloadFormatIndicator = properties.PayloadFormatIndicator,
            ContentType = properties.ContentType,
            ResponseTopic = properties.ResponseTopic,
            // The cast matters: without it the conditional is a byte[] and its null becomes an empty, present
            // ReadOnlyMemory, which forwarded an empty Correlation Data the publisher never sent.
            CorrelationData = properties.CorrelationData is { } correlation ? (ReadOnlyMemory<byte>?)correlation.ToArray() : null,
            UserProperties = properties.UserProperties is { Count: > 0 } user ? new List<KeyValuePair<string, string>>(user) : null,
        };
    }

    /// <summary>Message Expiry Interval to forward (5.0), or null when the message does not expire.</summary>
    public uint? RemainingExpirySeconds(DateTimeOffset now)
    {
        if (ExpiresAt is not { } at)
        {
            return null;
        }

        // The forwarded value is the received one minus the time spent in the broker [MQTT-3.3.2-6]; never 0 while
        // the message is still alive.
        var remaining = Math.Ceiling((at - now).TotalSeconds);
        return remaining < 1 ? 1u : remaining > uint.MaxValue ? uint.MaxValue : (uint)remaining;
    }

    private StoredMessage? _stored;

    /// <summary>The persisted form, built once per message and shared by every recipient's queue row.</summary>
    public StoredMessage ToStored() => _stored ??= new StoredMessage(Topic, Payload, (byte)Qos, Retain, PublisherClientId, ExpiresAt,
        PayloadFormatIndicator, ContentType, ResponseTopic, CorrelationData?.ToArray(), UserProperties);

    public static MqttApplicationMessage FromStored(StoredMessage stored) =>
        new(stored.Topic, stored.Payload, (MqttQos)stored.Qos, stored.Retain)
        {
            PublisherClientId = stored.PublisherClientId,
            ExpiresAt = stored.ExpiresAt,
            PayloadFormatIndicator = stored.PayloadFormatIndicator,
            ContentType = stored.ContentType,
            ResponseTopic = stored.ResponseTopic,
            CorrelationData = stored.CorrelationData,
            UserProperties = stored.UserProperties is { Count: > 0 } user ? new List<KeyValuePair<string, string>>(user) : null,
            _stored = stored,
        };
}
