using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Policy.Matching;

/// <summary>
/// Filter algebra for subscribe decisions (MQTT 5.0 §4.7), on the codec's topic rules (<see cref="MqttTopic"/>:
/// validation, share names, levels, the '$' rule). Grants and requests are filters; since a level can
/// hold infinitely many names, a request is covered by a set of grants exactly when one grant covers it alone,
/// so <see cref="Contains"/> is checked grant by grant.
/// Topics starting with '$' follow [MQTT-4.7.2-1]: a grant whose first level is a wildcard does not reach them
/// (grant "#" does not cover "$SYS/x"); a deny whose first level is a wildcard does (fail closed).
/// </summary>
internal static class TopicFilters
{
    /// <summary>True when every topic <paramref name="request"/> can match is matched by <paramref name="grant"/>.
    /// <paramref name="isDeny"/>: the grant is a deny, whose leading wildcard also reaches '$' topics (fail closed).</summary>
    public static bool Contains(string[] grant, ReadOnlySpan<char> request, bool isDeny = false)
    {
        var levels = new TopicLevelEnumerator(request);
        for (int i = 0; ; i++)
        {
            bool hasLevel = levels.MoveNext();
            if (i == grant.Length)
            {
                return !hasLevel;
            }

            var g = grant[i];
            if (g == "#")
            {
                // '#' also matches the parent level ("a/#" covers "a").
                return isDeny || !(i == 0 && hasLevel && MqttTopic.IsDollarTopic(levels.Current));
            }

            if (!hasLevel)
            {
                return false;
            }

            var r = levels.Current;
            if (r is "#")
            {
                return false;
            }

            if (g == "+")
            {
                if (i == 0 && !isDeny && MqttTopic.IsDollarTopic(r))
                {
                    return false;
                }
            }
            else if (r is "+" || !r.SequenceEqual(g))
            {
                return false;
            }
        }
    }

    /// <summary>True when some topic is matched by both <paramref name="deny"/> and <paramref name="request"/>.</summary>
    public static bool Overlaps(string[] deny, ReadOnlySpan<char> request)
    {
        var levels = new TopicLevelEnumerator(request);
        for (int i = 0; ; i++)
        {
            bool hasLevel = levels.MoveNext();
            if (i == deny.Length)
            {
                // "a/#" requested, "a" denied: "a/#" matches "a".
                return !hasLevel || levels.Current is "#";
            }

            var d = deny[i];
            if (d == "#")
            {
                return true;
            }

            if (!hasLevel)
            {
                return false;
            }

            var r = levels.Current;
            if (r is "#")
            {
                return !(i == 0 && MqttTopic.IsDollarTopic(d));
            }

            if (r is "+")
            {
                if (i == 0 && MqttTopic.IsDollarTopic(d))
                {
                    return false;
                }
            }
            else if (d != "+" && !r.SequenceEqual(d))
            {
                return false;
            }
        }
    }

    public static string[] Split(string filter) => filter.Split('/');

}
