namespace OmniBroker.Policy.Matching;

/// <summary>Splits a topic or filter into levels without allocating (MQTT 5.0 §4.7.1: '/' separates levels;
/// empty levels are levels).</summary>
internal ref struct TopicLevelEnumerator
{
    private ReadOnlySpan<char> _rest;
    private bool _done;

    public TopicLevelEnumerator(ReadOnlySpan<char> topic)
    {
        _rest = topic;
        _done = false;
        Current = default;
    }

    public ReadOnlySpan<char> Current { get; private set; }

    public bool MoveNext()
    {
        if (_done)
        {
            return false;
        }

        int i = _rest.IndexOf('/');
        if (i < 0)
        {
            Current = _rest;
            _done = true;
        }
        else
        {
            Current = _rest[..i];
            _rest = _rest[(i + 1)..];
        }

        return true;
    }
}

/// <summary>
/// Filter algebra for subscribe decisions (MQTT 5.0 §4.7). Grants and requests are filters; since a level can
/// hold infinitely many names, a request is covered by a set of grants exactly when one grant covers it alone,
/// so <see cref="Contains"/> is checked grant by grant.
/// Topics starting with '$' follow [MQTT-4.7.2-1]: a grant whose first level is a wildcard does not reach them
/// (grant "#" does not cover "$SYS/x"); a deny whose first level is a wildcard does (fail closed).
/// </summary>
internal static class TopicFilters
{
    private const string SharePrefix = "$share/";

    /// <summary>A topic name for PUBLISH/delivery: non-empty, no wildcards, no NUL ([MQTT-3.3.2-2], [MQTT-4.7.3-1]).</summary>
    public static bool IsValidTopicName(ReadOnlySpan<char> topic) =>
        topic.Length > 0 && topic.IndexOfAny("+#\0") < 0;

    /// <summary>A filter: non-empty, '+' and '#' alone in their level, '#' last ([MQTT-4.7.1-1], [MQTT-4.7.1-2]).</summary>
    public static bool IsValidFilter(ReadOnlySpan<char> filter)
    {
        if (filter.Length == 0 || filter.IndexOf('\0') >= 0)
        {
            return false;
        }

        var levels = new TopicLevelEnumerator(filter);
        bool sawHash = false;
        while (levels.MoveNext())
        {
            if (sawHash)
            {
                return false;
            }

            var level = levels.Current;
            if (level.IndexOfAny('+', '#') < 0)
            {
                continue;
            }

            if (level.Length != 1)
            {
                return false;
            }

            sawHash = level[0] == '#';
        }

        return true;
    }

    /// <summary>Strips "$share/{group}/" (MQTT 5.0 §4.8.2): rights are about the filter, not the group.
    /// Returns false for a malformed shared subscription.</summary>
    public static bool TryStripShare(ReadOnlySpan<char> filter, out ReadOnlySpan<char> inner)
    {
        inner = filter;
        if (!filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            return true;
        }

        var rest = filter[SharePrefix.Length..];
        int slash = rest.IndexOf('/');
        if (slash <= 0 || rest[..slash].IndexOfAny('+', '#') >= 0)
        {
            return false;
        }

        inner = rest[(slash + 1)..];
        return inner.Length > 0;
    }

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
                return isDeny || !(i == 0 && hasLevel && StartsWithDollar(levels.Current));
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
                if (i == 0 && !isDeny && StartsWithDollar(r))
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
                return !(i == 0 && StartsWithDollar(d));
            }

            if (r is "+")
            {
                if (i == 0 && StartsWithDollar(d))
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

    /// <summary>Reference matcher (topic name against one filter) with the grant/deny '$' rule; the hot path uses
    /// <see cref="TopicTrie"/>, this is for explanations and tests.</summary>
    public static bool Matches(string[] filter, ReadOnlySpan<char> topic, bool isDeny)
    {
        var levels = new TopicLevelEnumerator(topic);
        for (int i = 0; ; i++)
        {
            bool hasLevel = levels.MoveNext();
            if (i == filter.Length)
            {
                return !hasLevel;
            }

            var f = filter[i];
            if (f == "#")
            {
                return isDeny || i != 0 || !StartsWithDollar(topic);
            }

            if (!hasLevel)
            {
                return false;
            }

            if (f == "+")
            {
                if (i == 0 && !isDeny && StartsWithDollar(topic))
                {
                    return false;
                }
            }
            else if (!levels.Current.SequenceEqual(f))
            {
                return false;
            }
        }
    }

    public static string[] Split(string filter) => filter.Split('/');

    private static bool StartsWithDollar(ReadOnlySpan<char> s) => s.Length > 0 && s[0] == '$';
}
