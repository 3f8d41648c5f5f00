using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>PUBLISH from the client, its acknowledgement and the hold-back while a subscriber has no room; the
/// client's acknowledgements of our deliveries (PUBACK, PUBREC, PUBREL, PUBCOMP).</summary>
internal sealed partial class MqttConnection
{
    // ------------------------------------------------------------------ PUBLISH (§3.3, §4.3)

    private void HandlePublish(PublishPacket publish)
    {
        var v5 = _version == MqttProtocolVersion.V500;
        var session = _session!;
        var topic = publish.Topic;

        if (v5 && publish.Properties?.SubscriptionIdentifiers is not null)
        {
            // [MQTT-3.3.4-6]: a PUBLISH sent by a client MUST NOT contain a Subscription Identifier.
            MqttThrow.ProtocolError("Subscription Identifier in a PUBLISH from a client [MQTT-3.3.4-6]");
        }
        if (v5 && publish.Properties?.TopicAlias is { } alias)
        {
            if (alias == 0 || alias > _options.TopicAliasMaximum)
            {
                // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
                MqttThrow.Violation(MqttReasonCode.TopicAliasInvalid, $"topic alias {alias} outside 1..{_options.TopicAliasMaximum}");
            }
            if (topic.Length == 0)
            {
                topic = _topicAliases![alias] ?? throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"topic alias {alias} is not mapped");
            }
            else
            {
                _topicAliases![alias] = topic;
            }
        }

        if (!MqttTopic.IsValidTopicName(topic))
        {
            // [MQTT-3.3.2-2]: no wildcards in a topic name.
            MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, "invalid topic name in PUBLISH");
        }
        var retain = publish.Retain;
        if (retain && !_options.RetainAvailable)
        {
            if (v5)
            {
                // 5.0 §3.2.2.3.5: RETAIN=1 while Retain Available is 0 is a protocol violation (0x9A).
                MqttThrow.Violation(MqttReasonCode.RetainNotSupported, "RETAIN while retain is not available");
            }
            retain = false;
        }

        var qos = publish.Qos;
        var packetId = publish.PacketId;
        _broker.Metrics.MessageIn(qos, (int)publish.Payload.Length);

        if (qos == MqttQos.ExactlyOnce && session.IsInboundQos2Pending(packetId))
        {
            // A retransmission of a QoS 2 PUBLISH we already delivered (method B below): acknowledge again, do not
            // deliver again (5.0 §4.3.3, 3.1.1 §4.3.3).
            SendAck(new PubAckPacket(MqttPacketType.PubRec) { PacketId = packetId }, 0);
            return;
        }
        if (v5 && qos != MqttQos.AtMostOnce && session.InboundQos2Count >= _options.ReceiveMaximum)
        {
            // 5.0 §3.3.4, §4.9: more unacknowledged QoS 1/2 PUBLISH than the Receive Maximum we announced.
            MqttThrow.Violation(MqttReasonCode.ReceiveMaximumExceeded, $"more than {_options.ReceiveMaximum} QoS 1/2 PUBLISH in flight");
        }

        if (topic[0] == '$' && _broker.ReservedTopicHandler is { } reserved && reserved.Handles(topic))
        {
            HandleReserved(reserved, publish, topic, session);
            return;
        }

        var allowed = _grants.CanPublish(topic, qos, retain);
        _broker.Metrics.AuthorizationDecision(MqttMetrics.Actions.Publish, allowed);
        if (!allowed)
        {
            _broker.DropLog.Record(ClientId!, "publish_denied", denial: true, topic);
            _broker.Metrics.MessageDropped(MqttMetrics.DropReasons.Denied);
            _broker.CountDropped();
            if (v5)
            {
                // 5.0 tells the client: PUBACK/PUBREC with 0x87, which also ends a QoS 2 flow (no PUBREL expected).
                // Through the ack queue: it must not overtake acknowledgements still waiting for their commit [MQTT-4.6.0-2].
                if (qos != MqttQos.AtMostOnce)
                {
                    SendAck(new PubAckPacket(qos == MqttQos.AtLeastOnce ? MqttPacketType.PubAck : MqttPacketType.PubRec)
                    {
                        PacketId = packetId,
                        ReasonCode = MqttReasonCode.NotAuthorized,
                    }, 0);
                }
                return;
            }

            // 3.1.1 has no negative acknowledgement: acknowledge so the client does not retry forever, and drop.
            Acknowledge(session, qos, packetId, MqttReasonCode.Success);
            if (_options.DisconnectOnDeniedPublishV311)
            {
                RequestClose(null);
            }
            return;
        }

        if (qos != MqttQos.AtMostOnce && !_broker.CanStoreDurably)
        {
            // The store cannot write (disk full): refuse instead of acknowledging what cannot be kept.
            RefuseUnstorable(topic, qos, packetId);
            return;
        }

        // Inbound QoS 2 uses method B of the spec's QoS 2 flow (3.1.1 Figure 4.3, 5.0 Figure 4.3): store the Packet
        // Identifier and deliver onwards now; PUBREL only releases the identifier. While the identifier is held a
        // retransmitted PUBLISH is acknowledged but not delivered again, which gives exactly-once delivery without
        // keeping the message itself.
        var delivery = _delivery!;
        delivery.Reset();
        var delivered = _broker.Publish(topic, publish.Payload, qos, retain, v5 ? publish.Properties : null, ClientId, delivery, out var retainRefused,
            out var position);
        var reasonCode = !v5 ? MqttReasonCode.Success
            : retainRefused ? MqttReasonCode.QuotaExceeded // delivered, but over a retained-message limit: not retained
            : delivered == 0 ? MqttReasonCode.NoMatchingSubscribers : MqttReasonCode.Success;
        if (delivery.Overflow && v5)
        {
            // Some session could not absorb its copy: the publisher learns it before any acknowledgement (0x97 also
            // ends a QoS 2 flow, so no identifier is held).
            reasonCode = MqttReasonCode.QuotaExceeded;
        }
        if (delivery.Held.Count > 0)
        {
            // Acknowledged once every held subscriber has room (HoldAsync) and, in strict durability, once the store
            // has committed the message; a QoS 2 identifier is recorded now so a retransmission after a reconnect is
            // not delivered twice.
            if (qos == MqttQos.ExactlyOnce && (byte)reasonCode < 0x80)
            {
                session.TryBeginInboundQos2(packetId, out var qos2Position);
                position = Math.Max(position, qos2Position);
            }
            _pendingAck = new PendingAck(qos, packetId, reasonCode, position, delivery.Remote);
            return;
        }
        Acknowledge(session, qos, packetId, reasonCode, position, delivery.Remote);
    }

    /// <summary>The next input; while held back, also returns (cancelled, with the unread input) once there is room.</summary>
    private static async Task<ReadResult> ReadOrRoomAsync(PipeReader input, ValueTask<ReadResult> read, Task hold)
    {
        var reading = read.AsTask();
        if (await Task.WhenAny(reading, hold).ConfigureAwait(false) == hold && !reading.IsCompleted)
        {
            input.CancelPendingRead();
        }
        return await reading.ConfigureAwait(false);
    }

    /// <summary>Waits until every subscriber whose queue the last PUBLISH filled has room again, declaring slow (and
    /// handling by policy) those full for longer than the slow-subscriber timeout; then sends the held acknowledgement.</summary>
    private async Task HoldAsync()
    {
        var started = _time.GetTimestamp();
        var held = _delivery!.Held;
        foreach (var subscriber in held)
        {
            while (!_closeRequested)
            {
                var room = subscriber.WaitForRoomAsync();
                if (room.IsCompleted)
                {
                    break;
                }
                var remaining = _options.SlowSubscriberTimeout - subscriber.FullFor();
                if (remaining > TimeSpan.Zero)
                {
                    using var timeout = new CancellationTokenSource();
                    var delay = Task.Delay(remaining, _time, timeout.Token);
                    var first = await Task.WhenAny(room, _closed.Task, delay).ConfigureAwait(false);
                    timeout.Cancel();
                    if (first != delay)
                    {
                        continue;
                    }
                }
                _broker.DeclareSlow(subscriber);
            }
        }
        held.Clear();
        _broker.Metrics.PublisherHeldBack(_time.GetElapsedTime(started).TotalSeconds);
        if (_closeRequested)
        {
            return;
        }
        var ack = _pendingAck;
        _pendingAck = default;
        if (ack.Qos == MqttQos.AtMostOnce)
        {
            return;
        }
        // Room is there; the acknowledgement still waits for the store commit of its message (strict durability),
        // in order behind acknowledgements already waiting for theirs.
        var type = ack.Qos == MqttQos.ExactlyOnce ? MqttPacketType.PubRec : MqttPacketType.PubAck;
        SendAck(new PubAckPacket(type) { PacketId = ack.PacketId, ReasonCode = ack.ReasonCode }, ack.Position, ack.Remote);
    }

    /// <summary>An acknowledgement held for subscriber room; <see cref="Position"/> is the store position it must also
    /// wait for (0 when none), <see cref="Remote"/> the other nodes of a cluster (null when none).</summary>
    private readonly record struct PendingAck(MqttQos Qos, ushort PacketId, MqttReasonCode ReasonCode, long Position, Task<bool>? Remote);

    // MQTT 5.0 §4.10 request/response with the broker itself as responder: the reply is queued for this session only.
    private void HandleReserved(IReservedTopicHandler handler, PublishPacket publish, string topic, MqttSession session)
    {
        var properties = _version == MqttProtocolVersion.V500 ? publish.Properties : null;
        var responseTopic = properties?.ResponseTopic;
        var correlation = properties?.CorrelationData?.ToArray();
        var replyQos = publish.Qos == MqttQos.AtMostOnce ? MqttQos.AtMostOnce : MqttQos.AtLeastOnce;
        var request = new ReservedTopicRequest(ClientId!, _identity?.Certificate, _identity?.Chain ?? [], topic, publish.Payload.ToArray(),
            responseTopic, correlation, properties?.ContentType, reply =>
            {
                if (responseTopic is null)
                {
                    return;
                }
                var message = new MqttApplicationMessage(responseTopic, reply.Payload, replyQos, retain: false)
                {
                    IsDirectReply = true,
                    ContentType = reply.ContentType,
                    CorrelationData = correlation,
                    UserProperties = reply.UserProperties is { Count: > 0 } user ? [.. user] : null,
                };
                session.Enqueue(message, replyQos, retain: false, subscriptionIds: null);
            });
        handler.Handle(request);
        Acknowledge(session, publish.Qos, publish.PacketId, MqttReasonCode.Success);
    }

    private void Acknowledge(MqttSession session, MqttQos qos, ushort packetId, MqttReasonCode reasonCode, long position = 0,
        Task<bool>? remote = null)
    {
        switch (qos)
        {
            case MqttQos.AtLeastOnce:
                SendAck(new PubAckPacket(MqttPacketType.PubAck) { PacketId = packetId, ReasonCode = reasonCode }, position, remote);
                break;
            case MqttQos.ExactlyOnce:
                var held = 0L;
                if ((byte)reasonCode < 0x80)
                {
                    // A PUBREC with an error code ends the flow (5.0 §4.3.3): no PUBREL follows, nothing to hold.
                    session.TryBeginInboundQos2(packetId, out held);
                }
                SendAck(new PubAckPacket(MqttPacketType.PubRec) { PacketId = packetId, ReasonCode = reasonCode }, Math.Max(position, held), remote);
                break;
        }
    }

    /// <summary>Sends a PUBACK/PUBREC now, or once the store has committed <paramref name="position"/> (strict
    /// durability) and the other nodes of a cluster hold its message (<paramref name="remote"/>), in order with the others.</summary>
    private void SendAck(PubAckPacket ack, long position, Task<bool>? remote = null) => _acks.Send(ack, position, remote);

    private void RefuseUnstorable(string topic, MqttQos qos, ushort packetId)
    {
        _logger.PublishRefusedStoreUnavailable(ClientId!, qos, topic);
        _broker.Metrics.MessageDropped("store_unavailable");
        _broker.CountDropped();
        if (_version != MqttProtocolVersion.V500)
        {
            RequestClose(null);
            return;
        }
        SendAck(new PubAckPacket(qos == MqttQos.AtLeastOnce ? MqttPacketType.PubAck : MqttPacketType.PubRec)
        {
            PacketId = packetId,
            ReasonCode = MqttReasonCode.QuotaExceeded,
        }, 0);
    }

    private void HandleAck(PubAckPacket ack)
    {
        var session = _session!;
        var v5 = _version == MqttProtocolVersion.V500;
        switch (ack.PacketType)
        {
            case MqttPacketType.PubAck:
                if (session.OnPubAck(ack.PacketId))
                {
                    Signal();
                }
                else
                {
                    _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                }
                break;

            case MqttPacketType.PubRec:
                switch (session.OnPubRec(ack.PacketId, ack.ReasonCode))
                {
                    case PubRecOutcome.SendPubRel:
                        Send(new PubAckPacket(MqttPacketType.PubRel) { PacketId = ack.PacketId });
                        break;
                    case PubRecOutcome.Refused:
                        Signal();
                        break;
                    default:
                        // 5.0 §3.6.2.1 answers an unknown identifier with PUBREL 0x92; 3.1.1 completes the flow anyway.
                        _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                        Send(new PubAckPacket(MqttPacketType.PubRel)
                        {
                            PacketId = ack.PacketId,
                            ReasonCode = v5 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success,
                        });
                        break;
                }
                break;

            case MqttPacketType.PubRel:
                var known = session.CompleteInboundQos2(ack.PacketId);
                Send(new PubAckPacket(MqttPacketType.PubComp)
                {
                    PacketId = ack.PacketId,
                    ReasonCode = known || !v5 ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound,
                });
                break;

            case MqttPacketType.PubComp:
                if (session.OnPubComp(ack.PacketId))
                {
                    Signal();
                }
                else
                {
                    _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                }
                break;
        }
    }
}
