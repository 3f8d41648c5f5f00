using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Mqtt.Engine;

/// <summary>Inbound QoS 2 (method B): the packet identifiers held from PUBLISH until PUBREL, persisted while the
/// session is. Guarded by <see cref="Sync"/> like the rest of the session.</summary>
internal sealed partial class MqttSession
{
    /// <summary>Inbound QoS 2 PUBLISH: records the packet identifier until PUBREL. False when it is already held,
    /// i.e. the PUBLISH is a retransmission that must not be delivered again.</summary>
    public bool TryBeginInboundQos2(ushort packetId) => TryBeginInboundQos2(packetId, out _);

    /// <summary><see cref="TryBeginInboundQos2(ushort)"/>; <paramref name="position"/> is the store position to wait for
    /// before PUBREC (0 when nothing was written).</summary>
    public bool TryBeginInboundQos2(ushort packetId, out long position)
    {
        lock (Sync)
        {
            position = 0;
            if (!_inboundQos2.Add(packetId))
            {
                return false;
            }
            if (_store is { } store)
            {
                position = store.Append(new InboundQos2Saved(ClientId, packetId));
            }
            return true;
        }
    }

    public bool IsInboundQos2Pending(ushort packetId)
    {
        lock (Sync)
        {
            return _inboundQos2.Contains(packetId);
        }
    }

    /// <summary>PUBREL: releases the packet identifier. False when it was unknown.</summary>
    public bool CompleteInboundQos2(ushort packetId)
    {
        lock (Sync)
        {
            if (!_inboundQos2.Remove(packetId))
            {
                return false;
            }
            _store?.Append(new InboundQos2Deleted(ClientId, packetId));
            return true;
        }
    }

    public int InboundQos2Count
    {
        get
        {
            lock (Sync)
            {
                return _inboundQos2.Count;
            }
        }
    }
}
