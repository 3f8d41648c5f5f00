using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>SUBSCRIBE and UNSUBSCRIBE from the client: authorization per filter, SUBACK/UNSUBACK, retained messages.</summary>
internal sealed partial class MqttConnection
{
    // ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10)

    private void HandleSubscribe(SubscribePacket subscribe)
    {
        var session = _session!;
        var v5 = _version == MqttProtocolVersion.V500;
        var subscriptionId = v5 && subscribe.Properties?.SubscriptionIdentifiers is [var id, ..] ? id : 0u;
        var codes = new List<MqttReasonCode>(subscribe.Subscriptions.Count);
        List<Subscription>? sendRetained = null;

        foreach (var request in subscribe.Subscriptions)
        {
            if (!TopicFilters.Validate(request.Filter, out var shared))
            {
                codes.Add(MqttReasonCode.TopicFilterInvalid);
                continue;
            }
            if (shared && request.Options.NoLocal)
            {
                // [MQTT-3.8.3-4]
                MqttThrow.ProtocolError("No Local on a shared subscription");
            }

            if (_broker.Limits.SubscriptionRefused(session, request.Filter))
            {
                // 3.1.1 SUBACK turns every failure into 0x80.
                codes.Add(MqttReasonCode.QuotaExceeded);
                continue;
            }
            var subscription = new Subscription(session, request.Filter, request.Options, subscriptionId);
            // The policy decides on the topic filter proper; the share group only spreads the load.
            var allowed = _grants.CanSubscribe(subscription.TopicFilter);
            _broker.Metrics.AuthorizationDecision(MqttMetrics.Actions.Subscribe, allowed);
            if (!allowed)
            {
                _broker.DropLog.Record(ClientId!, "subscribe_denied", denial: true, request.Filter);
                codes.Add(MqttReasonCode.NotAuthorized);
                continue;
            }

            var isNew = _broker.AddSubscription(session, subscription);
            codes.Add((MqttReasonCode)(byte)request.Options.MaximumQos);

            // Retained messages on subscribe per Retain Handling [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11];
            // never for shared subscriptions (5.0 §4.8.2: retained messages are not sent to a shared subscription).
            var handling = request.Options.RetainHandling;
            if (!shared && (handling == MqttRetainHandling.SendAtSubscribe || (handling == MqttRetainHandling.SendAtSubscribeIfNew && isNew)))
            {
                (sendRetained ??= []).Add(subscription);
            }
        }

        // SUBACK is queued before the retained messages; the writer takes session messages before control packets
        // and writes control packets first, so SUBACK always precedes them on the wire.
        Send(new SubAckPacket { PacketId = subscribe.PacketId, ReasonCodes = codes });
        if (sendRetained is not null)
        {
            foreach (var subscription in sendRetained)
            {
                _broker.DeliverRetained(subscription);
            }
        }
    }

    private void HandleUnsubscribe(UnsubscribePacket unsubscribe)
    {
        var codes = new List<MqttReasonCode>(unsubscribe.Filters.Count);
        foreach (var filter in unsubscribe.Filters)
        {
            // 0x11 when the filter did not exist (5.0 §3.11.3).
            codes.Add(_broker.RemoveSubscription(_session!, filter) ? MqttReasonCode.Success : MqttReasonCode.NoSubscriptionExisted);
        }
        Send(new UnsubAckPacket { PacketId = unsubscribe.PacketId, ReasonCodes = codes });
    }
}
