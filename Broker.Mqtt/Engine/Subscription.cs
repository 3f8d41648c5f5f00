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

internal static class TopicFilters
{
    private const string SharePrefix = MqttTopic.SharedPrefix;

    /// <summary>Splits <c>$share/{ShareName}/{filter}</c> (MQTT 5.0 §4.8.2). Returns false when
    /// <paramref name="filter"/> is not a shared subscription; a malformed one returns true with an
    /// empty group or inner filter, which <see cref="Validate"/> rejects.</summary>
    public static bool TryParseShared(string filter, out string group, out string inner)
    {
        if (!filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            group = "";
            inner = "";
            return false;
        }

        var rest = filter.AsSpan(SharePrefix.Length);
        var slash = rest.IndexOf('/');
        if (slash < 0)
        {
            group = rest.ToString();
            inner = "";
        }
        else
        {
            group = rest[..slash].ToString();
            inner = rest[(slash + 1)..].ToString();
        }
        return true;
    }

    /// <summary>Checks a SUBSCRIBE filter, shared form included ([MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.8.2-1],
    /// [MQTT-4.8.2-2]); the codec already refuses invalid filters, this guards other callers.</summary>
    public static bool Validate(string filter, out bool shared)
    {
        shared = MqttTopic.IsShared(filter);
        return MqttTopic.IsValidTopicFilter(filter);
    }

    /// <summary>Exact topic-filter match, for single filters (retained delivery checks, tests).
    /// '$'-topics are not matched by a leading wildcard [MQTT-4.7.2-1].</summary>
    public static bool Matches(string filter, string topic)
    {
        if (topic.Length > 0 && topic[0] == '$' && filter.Length > 0 && filter[0] is '+' or '#')
        {
            return false;
        }

        var f = filter.AsSpan();
        var t = topic.AsSpan();
        while (true)
        {
            var fs = f.IndexOf('/');
            var fLevel = fs < 0 ? f : f[..fs];
            if (fLevel.SequenceEqual("#"))
            {
                return true;
            }

            var ts = t.IndexOf('/');
            var tLevel = ts < 0 ? t : t[..ts];
            if (!fLevel.SequenceEqual("+") && !fLevel.SequenceEqual(tLevel))
            {
                return false;
            }

            if (fs < 0 || ts < 0)
            {
                // "a/#" matches "a": the parent level of a multi-level wildcard [MQTT-4.7.1-2].
                return fs < 0 && ts < 0 || (ts < 0 && f[(fs + 1)..].SequenceEqual("#"));
            }

            f = f[(fs + 1)..];
            t = t[(ts + 1)..];
        }
    }

    public static MqttQos Min(MqttQos a, MqttQos b) => a < b ? a : b;
}
