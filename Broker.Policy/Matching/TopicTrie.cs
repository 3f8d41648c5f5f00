using OmniBroker.Mqtt.Codec;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Policy.Matching;

/// <summary>A filter that contributed to a decision, for explanations.</summary>
internal readonly record struct Contribution(CompiledRule Rule, string Filter, int Flags);

/// <summary>
/// The per-connection publish/receive matcher: the client's substituted filters in a trie keyed by level, each
/// terminal holding the OR of its rules' decision bits. A lookup walks the topic once, following the literal,
/// '+' and '#' children, and ORs the bits of every filter that matches; deny bits are kept apart from allow bits
/// so a deny anywhere wins. Built once at CONNECT, read-only afterwards (safe for concurrent readers).
/// </summary>
internal sealed class TopicTrie
{
    // Bit layout of the decision flags.
    public const int PublishAllowShift = 0;   // 6 bits: qos * 2 + retain
    public const int PublishDenyShift = 8;    // 6 bits
    public const int ReceiveAllow = 1 << 16;
    public const int ReceiveDeny = 1 << 17;

    /// <summary>A subscribe deny: a wider subscription that was granted does not deliver these topics.</summary>
    public const int SubscribeDeny = 1 << 18;

    /// <summary>Bits a filter that starts with a wildcard keeps for a '$' topic: only denies ([MQTT-4.7.2-1]).</summary>
    public const int DenyBits = (0x3F << PublishDenyShift) | ReceiveDeny | SubscribeDeny;

    private const int AllBits = -1;

    private readonly Node _root = new();
    private readonly bool _trackRules;

    public TopicTrie(bool trackRules) => _trackRules = trackRules;

    public bool IsEmpty { get; private set; } = true;

    public void Add(string filter, int flags, CompiledRule rule)
    {
        IsEmpty = false;
        var node = _root;
        var levels = filter.Split('/');
        for (int i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level == "#")
            {
                node.HashFlags |= flags;
                if (_trackRules)
                {
                    (node.HashRules ??= []).Add(new Contribution(rule, filter, flags));
                }

                return;
            }

            node = level == "+" ? node.Plus ??= new Node() : node.Child(level);
        }

        node.ExactFlags |= flags;
        if (_trackRules)
        {
            (node.ExactRules ??= []).Add(new Contribution(rule, filter, flags));
        }
    }

    /// <summary>The OR of the flags of every filter matching <paramref name="topic"/> (a valid topic name).</summary>
    public int Match(ReadOnlySpan<char> topic)
    {
        int acc = 0;
        bool dollar = MqttTopic.IsDollarTopic(topic);
        Walk(_root, topic, more: true, root: true, dollar, AllBits, ref acc, null);
        return acc;
    }

    public int Match(ReadOnlySpan<char> topic, List<Contribution> contributions)
    {
        int acc = 0;
        bool dollar = MqttTopic.IsDollarTopic(topic);
        Walk(_root, topic, more: true, root: true, dollar, AllBits, ref acc, contributions);
        return acc;
    }

    private static void Walk(Node node, ReadOnlySpan<char> rest, bool more, bool root, bool dollar, int mask, ref int acc, List<Contribution>? trace)
    {
        int wildcardMask = root && dollar ? mask & DenyBits : mask;

        // '#' matches the remaining levels, and also the parent level itself ("a/#" matches "a").
        if (node.HashFlags != 0)
        {
            acc |= node.HashFlags & wildcardMask;
            Trace(node.HashRules, wildcardMask, trace);
        }

        if (!more)
        {
            acc |= node.ExactFlags & mask;
            Trace(node.ExactRules, mask, trace);
            return;
        }

        ReadOnlySpan<char> level;
        ReadOnlySpan<char> next;
        bool nextMore;
        int slash = rest.IndexOf('/');
        if (slash < 0)
        {
            level = rest;
            next = default;
            nextMore = false;
        }
        else
        {
            level = rest[..slash];
            next = rest[(slash + 1)..];
            nextMore = true;
        }

        if (node.TryGetChild(level, out var child))
        {
            Walk(child, next, nextMore, root: false, dollar, mask, ref acc, trace);
        }

        if (node.Plus is not null)
        {
            Walk(node.Plus, next, nextMore, root: false, dollar, wildcardMask, ref acc, trace);
        }
    }

    private static void Trace(List<Contribution>? rules, int mask, List<Contribution>? trace)
    {
        if (trace is null || rules is null)
        {
            return;
        }

        foreach (var c in rules)
        {
            if ((c.Flags & mask) != 0)
            {
                trace.Add(c with { Flags = c.Flags & mask });
            }
        }
    }

    /// <summary>Compacts the trie for its read-only life: a node with few children (the common case: one
    /// device's own topics) keeps them in two small arrays scanned linearly, which is both smaller and faster
    /// than a dictionary; wide nodes keep a dictionary probed with span lookups.</summary>
    public void Freeze() => _root.Freeze();

    private sealed class Node
    {
        private const int MaxLinearChildren = 8;

        public Dictionary<string, Node>? Children;
        public Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> Lookup;
        public string[]? SmallKeys;
        public Node[]? SmallNodes;
        public Node? Plus;
        public int ExactFlags;
        public int HashFlags;
        public List<Contribution>? ExactRules;
        public List<Contribution>? HashRules;

        public bool TryGetChild(ReadOnlySpan<char> level, out Node child)
        {
            if (SmallKeys is { } keys)
            {
                for (int i = 0; i < keys.Length; i++)
                {
                    if (level.SequenceEqual(keys[i]))
                    {
                        child = SmallNodes![i];
                        return true;
                    }
                }
            }
            else if (Children is not null)
            {
                return Lookup.TryGetValue(level, out child!);
            }

            child = null!;
            return false;
        }

        public void Freeze()
        {
            if (Children is not null)
            {
                foreach (var child in Children.Values)
                {
                    child.Freeze();
                }

                if (Children.Count <= MaxLinearChildren)
                {
                    SmallKeys = [.. Children.Keys];
                    SmallNodes = [.. Children.Values];
                    Children = null;
                    Lookup = default;
                }
            }

            Plus?.Freeze();
        }

        public Node Child(string level)
        {
            if (SmallKeys is not null)
            {
                throw new InvalidOperationException("the trie is frozen");
            }

            if (Children is null)
            {
                Children = new Dictionary<string, Node>(StringComparer.Ordinal);
                Lookup = Children.GetAlternateLookup<ReadOnlySpan<char>>();
            }

            if (!Children.TryGetValue(level, out var child))
            {
                Children[level] = child = new Node();
            }

            return child;
        }
    }
}
