using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>One subscription of one session. Immutable: replacing a subscription (same filter, new options)
/// swaps the object in the index.</summary>
internal sealed class Subscription
{
    public Subscription(MqttSession session, string filter, SubscriptionOptions options, uint subscriptionId)
    {
        Session = session;
        Filter = filter;
        Options = options;
        SubscriptionId = subscriptionId;
        if (TopicFilters.TryParseShared(filter, out var group, out var inner))
        {
            ShareGroup = group;
            TopicFilter = inner;
        }
        else
        {
            TopicFilter = filter;
        }
    }

    public MqttSession Session { get; }

    /// <summary>The filter as the client sent it (with the <c>$share/group/</c> prefix when shared); the session's key.</summary>
    public string Filter { get; }

    /// <summary>The topic filter matched against topic names (without the share prefix).</summary>
    public string TopicFilter { get; }

    /// <summary>Share name of a shared subscription (MQTT 5.0 §4.8.2), else null.</summary>
    public string? ShareGroup { get; }

    public SubscriptionOptions Options { get; }

    /// <summary>5.0 Subscription Identifier (§3.8.2.1.2); 0 = none.</summary>
    public uint SubscriptionId { get; }

    public bool IsShared => ShareGroup is not null;

    public StoredSubscription ToStored() => new(Filter, (byte)Options.MaximumQos, Options.NoLocal, Options.RetainAsPublished,
        (byte)Options.RetainHandling, SubscriptionId);

    public static Subscription FromStored(MqttSession session, StoredSubscription stored) => new(session, stored.Filter,
        new SubscriptionOptions((MqttQos)stored.MaximumQos, stored.NoLocal, stored.RetainAsPublished, (MqttRetainHandling)stored.RetainHandling),
        stored.SubscriptionId);
}

/// <summary>The engine's use of the codec's topic rules (<see cref="MqttTopic"/>): one set of rules for the codec,
/// the engine and the policy.</summary>
internal static class TopicFilters
{
    /// <summary>Splits <c>$share/{ShareName}/{filter}</c> (MQTT 5.0 §4.8.2) with <see cref="MqttTopic.TrySplitShared"/>.
    /// Returns false when <paramref name="filter"/> is not a shared subscription; a malformed one returns true with
    /// an empty group or inner filter, which <see cref="Validate"/> rejects.</summary>
    public static bool TryParseShared(string filter, out string group, out string inner)
    {
        bool shared = MqttTopic.TrySplitShared(filter, out var groupSpan, out var innerSpan);
        group = groupSpan.ToString();
        inner = innerSpan.ToString();
        return shared;
    }

    /// <summary>Checks a SUBSCRIBE filter, shared form included ([MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.8.2-1],
    /// [MQTT-4.8.2-2]); the codec already refuses invalid filters, this guards other callers.</summary>
    public static bool Validate(string filter, out bool shared)
    {
        shared = MqttTopic.IsShared(filter);
        return MqttTopic.IsValidTopicFilter(filter);
    }

    public static MqttQos Min(MqttQos a, MqttQos b) => a < b ? a : b;
}
