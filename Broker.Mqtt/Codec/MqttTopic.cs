using System.Text;

namespace OmniBroker.Mqtt.Codec;

/// <summary>Topic Name and Topic Filter rules (MQTT 5.0 §4.7, §4.8.2; 3.1.1 §4.7).</summary>
public static class MqttTopic
{
    public const string SharedPrefix = "$share/";

    /// <summary>
    /// A Topic Name as published to: at least one character [MQTT-4.7.3-1], no wildcard
    /// [MQTT-3.3.2-2] [MQTT-4.7.1-1], no U+0000 [MQTT-4.7.3-2], well-formed UTF-16 and at most 65535 UTF-8 bytes.
    /// </summary>
    public static bool IsValidTopicName(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        return topic.Length != 0
            && topic.AsSpan().IndexOfAny('+', '#', '\0') < 0
            && IsEncodable(topic);
    }

    /// <summary>
    /// A Topic Filter as subscribed to: '#' only as the whole last level [MQTT-4.7.1-2], '+' only as a
    /// whole level [MQTT-4.7.1-3], at least one character [MQTT-4.7.3-1], no U+0000 [MQTT-4.7.3-2].
    /// "$share/{ShareName}/{filter}" is a shared subscription (5.0 §4.8.2): ShareName is non-empty
    /// without '/', '+', '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2], and the filter after it is non-empty and valid.
    /// </summary>
    public static bool IsValidTopicFilter(string filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Length == 0 || filter.Contains('\0') || !IsEncodable(filter))
        {
            return false;
        }

        ReadOnlySpan<char> span = filter;
        if (span.StartsWith(SharedPrefix, StringComparison.Ordinal))
        {
            ReadOnlySpan<char> rest = span[SharedPrefix.Length..];
            int slash = rest.IndexOf('/');
            if (slash <= 0 || rest[..slash].IndexOfAny('+', '#') >= 0)
            {
                return false;
            }
            span = rest[(slash + 1)..];
            if (span.IsEmpty)
            {
                return false;
            }
        }
        return IsValidFilterLevels(span);
    }

    /// <summary>True for "$share/{ShareName}/{filter}" (5.0 §4.8.2); validity is checked by <see cref="IsValidTopicFilter"/>.</summary>
    public static bool IsShared(string filter) => filter.StartsWith(SharedPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Splits "$share/{ShareName}/{filter}" (5.0 §4.8.2). Returns false when <paramref name="filter"/> is not a
    /// shared subscription; a malformed one returns true with an empty share name or topic filter, which
    /// <see cref="IsValidTopicFilter"/> rejects.
    /// </summary>
    public static bool TrySplitShared(ReadOnlySpan<char> filter, out ReadOnlySpan<char> shareName, out ReadOnlySpan<char> topicFilter)
    {
        if (!filter.StartsWith(SharedPrefix, StringComparison.Ordinal))
        {
            shareName = default;
            topicFilter = default;
            return false;
        }

        ReadOnlySpan<char> rest = filter[SharedPrefix.Length..];
        int slash = rest.IndexOf('/');
        shareName = slash < 0 ? rest : rest[..slash];
        topicFilter = slash < 0 ? default : rest[(slash + 1)..];
        return true;
    }

    /// <summary>The filter matched against topic names: <paramref name="filter"/> without a "$share/{ShareName}/"
    /// prefix. Rights and matching are about this part, never the share name.</summary>
    public static ReadOnlySpan<char> TopicFilterOf(ReadOnlySpan<char> filter) =>
        TrySplitShared(filter, out _, out ReadOnlySpan<char> topicFilter) ? topicFilter : filter;

    /// <summary>A topic starting with '$' (e.g. $SYS/...): a filter starting with a wildcard does not match it [MQTT-4.7.2-1].</summary>
    public static bool IsDollarTopic(ReadOnlySpan<char> topic) => topic.Length > 0 && topic[0] == '$';

    /// <summary>
    /// Whether <paramref name="topic"/> (a valid Topic Name) matches <paramref name="filter"/> (a valid Topic Filter
    /// without the share prefix): '+' matches exactly one level, empty levels included; '#' matches the remaining
    /// levels and the parent level ("a/#" matches "a") [MQTT-4.7.1-2]; a filter starting with a wildcard does not
    /// match a '$' topic [MQTT-4.7.2-1].
    /// </summary>
    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic) =>
        !(IsDollarTopic(topic) && filter.Length > 0 && filter[0] is '+' or '#') && MatchesLevels(filter, topic);

    /// <summary>
    /// <see cref="Matches"/> without the '$' rule of [MQTT-4.7.2-1]: level by level only. For callers that must fail
    /// closed, such as a policy deny whose first level is a wildcard, which also reaches '$' topics.
    /// </summary>
    public static bool MatchesLevels(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic)
    {
        TopicLevelEnumerator filterLevels = new(filter);
        TopicLevelEnumerator topicLevels = new(topic);
        while (true)
        {
            bool hasFilterLevel = filterLevels.MoveNext();
            bool hasTopicLevel = topicLevels.MoveNext();
            if (!hasFilterLevel)
            {
                return !hasTopicLevel;
            }

            ReadOnlySpan<char> level = filterLevels.Current;
            if (level is "#")
            {
                return true;
            }

            if (!hasTopicLevel || (level is not "+" && !level.SequenceEqual(topicLevels.Current)))
            {
                return false;
            }
        }
    }

    private static bool IsValidFilterLevels(ReadOnlySpan<char> filter)
    {
        int wildcard = filter.IndexOfAny('+', '#');
        if (wildcard < 0)
        {
            return true;
        }

        foreach (Range range in filter.Split('/'))
        {
            ReadOnlySpan<char> level = filter[range];
            if (level.Length == 1 && level[0] == '+')
            {
                continue;
            }
            if (level.Length == 1 && level[0] == '#')
            {
                // Only legal as the final level.
                if (range.End.GetOffset(filter.Length) != filter.Length)
                {
                    return false;
                }
                continue;
            }
            if (level.IndexOfAny('+', '#') >= 0)
            {
                return false;
            }
        }
        return true;
    }

    // Lone surrogates have no UTF-8 form ([MQTT-1.5.4-1]) and the length prefix is 16 bits.
    private static bool IsEncodable(string value)
    {
        if (value.Length > ushort.MaxValue)
        {
            return false;
        }
        ReadOnlySpan<char> span = value;
        int first = span.IndexOfAnyInRange('\uD800', '\uDFFF');
        for (int i = first < 0 ? span.Length : first; i < span.Length; i++)
        {
            char c = span[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= span.Length || !char.IsLowSurrogate(span[i + 1]))
                {
                    return false;
                }
                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                return false;
            }
        }
        // Up to 21845 UTF-16 chars always fit 65535 UTF-8 bytes; only longer strings need counting.
        return value.Length <= ushort.MaxValue / 3 || Encoding.UTF8.GetByteCount(value) <= ushort.MaxValue;
    }
}
