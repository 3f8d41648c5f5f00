using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// A connection's PUBACK/PUBREC that must wait for the store commit holding their message (strict durability). The
/// reader never waits: it queues the acknowledgement with its store position and goes on reading and routing, so
/// the publisher's next messages join the same group commit; a releaser sends acknowledgements, in order
/// [MQTT-4.6.0-2], as their commits complete. Acknowledgements that need no commit queue behind held ones. When a
/// commit fails (disk full), 5.0 clients get 0x97 (a PUBREC error also ends the QoS 2 flow) and 3.1.1 clients, which
/// have no negative acknowledgement, are disconnected unacknowledged so that they publish again later. In a cluster an
/// acknowledgement also waits until the other nodes the message was forwarded to hold it (their JetStream inboxes);
/// a failed hand-over is answered like a failed commit.
/// </summary>
internal sealed class DurableAckQueue(MqttBroker broker, MqttConnection connection)
{
    private readonly Lock _lock = new();
    private readonly Queue<(PubAckPacket Ack, long Position, Task<bool>? Remote)> _held = new();
    private long _maxPosition;
    private bool _releasing;

    /// <summary>Sends now, or queues behind the commit of <paramref name="position"/> and the hand-over to other nodes
    /// (<paramref name="remote"/>), or behind earlier held ones.</summary>
    public void Send(PubAckPacket ack, long position, Task<bool>? remote = null)
    {
        var wait = broker.MustWaitForCommit(position);
        if (remote is { IsCompletedSuccessfully: true, Result: true })
        {
            remote = null;
        }
        lock (_lock)
        {
            if (_held.Count > 0 || wait || remote is not null)
            {
                _held.Enqueue((ack, wait ? position : 0, remote));
                _maxPosition = Math.Max(_maxPosition, wait ? position : 0);
                if (_releasing)
                {
                    return;
                }
                _releasing = true;
            }
            else
            {
                connection.Send(ack);
                return;
            }
        }
        _ = ReleaseAsync();
    }

    private async Task ReleaseAsync()
    {
        var ready = new List<(PubAckPacket Ack, Task<bool>? Remote)>();
        while (true)
        {
            long target;
            lock (_lock)
            {
                if (_held.Count == 0)
                {
                    _releasing = false;
                    return;
                }
                target = _maxPosition;
            }

            var storeFailed = false;
            try
            {
                if (target > 0)
                {
                    await broker.Store!.WaitCommittedAsync(target).ConfigureAwait(false);
                }
            }
            catch (StoreUnavailableException)
            {
                storeFailed = true;
            }

            ready.Clear();
            lock (_lock)
            {
                while (_held.Count > 0 && _held.Peek().Position <= target)
                {
                    var (held, _, remote) = _held.Dequeue();
                    ready.Add((held, remote));
                }
            }
            foreach (var (ack, remote) in ready)
            {
                var failed = storeFailed || (remote is not null && !await remote.ConfigureAwait(false));
                if (failed && connection.ProtocolVersion != MqttProtocolVersion.V500)
                {
                    broker.Logger.PublishRefusedStoreUnavailable(connection.ClientId ?? "?", MqttQos.AtLeastOnce, "(batch)");
                    connection.RequestClose(null);
                    break;
                }
                if (failed && (byte)ack.ReasonCode < 0x80)
                {
                    ack.ReasonCode = MqttReasonCode.QuotaExceeded;
                    if (ack.PacketType == MqttPacketType.PubRec)
                    {
                        connection.Session?.CompleteInboundQos2(ack.PacketId);
                    }
                }
                connection.Send(ack);
            }
        }
    }
}
