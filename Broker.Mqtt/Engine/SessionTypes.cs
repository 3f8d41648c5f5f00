using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

internal enum EnqueueOutcome
{
    Queued,
    /// <summary>Queued, and the queue of the connected subscriber is now full: the publisher must wait for room
    /// (<see cref="MqttSession.WaitForRoomAsync"/>) before it is acknowledged and read again.</summary>
    QueuedFull,
    /// <summary>Queued after dropping the oldest queued QoS 0 message (<see cref="EnqueueResult.Dropped"/>).</summary>
    DroppedOldest,
    /// <summary>The new message was not queued (<see cref="EnqueueResult.Reason"/>): for QoS 1/2 an overflow the
    /// broker cannot absorb.</summary>
    DroppedNew,
    SessionEnded,
}

/// <summary><see cref="Position"/>: the store position of the queued row, 0 when nothing was written.</summary>
internal readonly record struct EnqueueResult(EnqueueOutcome Outcome, MqttApplicationMessage? Dropped, string? Reason = null, long Position = 0);

/// <summary>A subscriber declared slow: what was dropped and which connection to apply the policy to.</summary>
internal readonly record struct SlowDeclaration(bool Declared, int DroppedQos0, MqttConnection? Connection);

internal enum PubRecOutcome
{
    SendPubRel,
    Refused,
    NotFound,
}

internal struct DropCounts
{
    public int Expired;
    public int Denied;
}

/// <summary>A PUBLISH or PUBREL the writer loop must encode.</summary>
internal readonly record struct OutboundItem(bool IsPubRel, ushort PacketId, MqttApplicationMessage? Message, MqttQos Qos, bool Retain, bool Dup,
    uint[]? SubscriptionIds)
{
    public static OutboundItem PubRel(ushort packetId) => new(true, packetId, null, MqttQos.ExactlyOnce, false, false, null);

    public static OutboundItem Publish(MqttApplicationMessage message, MqttQos qos, bool retain, bool dup, ushort packetId, uint[]? subscriptionIds) =>
        new(false, packetId, message, qos, retain, dup, subscriptionIds);
}

/// <summary>A will waiting for its delay (5.0 §3.1.3.2.2) or for the session to end.</summary>
internal sealed record PendingWill(WillState Will, DateTimeOffset DueAt);

/// <summary>A connection's will with what is needed to publish it later: a private copy of the payload and the
/// grants it is checked against.</summary>
internal sealed record WillState(string ClientId, string Topic, byte[] Payload, MqttQos Qos, bool Retain, MqttProperties? Properties,
    uint DelaySeconds, IClientGrants Grants);

/// <summary>
/// What routing one PUBLISH of a connection produced beyond the recipient count: the sessions whose queue it
/// filled (the publisher waits for them before it is acknowledged and read again) and whether some session could
/// not absorb a QoS 1/2 copy (5.0: PUBACK 0x97). One instance per connection, reused.
/// </summary>
internal sealed class DeliveryContext(MqttSession? publisher)
{
    /// <summary>The publishing session; null for a message from another node of a cluster.</summary>
    public MqttSession? Publisher { get; } = publisher;

    public List<MqttSession> Held { get; } = new();

    public bool Overflow { get; set; }

    /// <summary>Completes with true once the other nodes the message was forwarded to hold it (cluster); null: none.</summary>
    public Task<bool>? Remote { get; set; }

    public void Reset()
    {
        Held.Clear();
        Overflow = false;
        Remote = null;
    }
}
