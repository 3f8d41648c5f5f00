using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Policy.Matching;

/// <summary>A subscribe grant or deny after substitution, split into levels.</summary>
internal readonly record struct SubscribeFilter(string[] Levels, string Filter, CompiledRule Rule);

/// <summary>
/// The rights of one connection under one policy: resolved at CONNECT, immutable afterwards. PUBLISH and
/// delivery go through the trie, behind a small direct-mapped cache of recent topics, so a repeated topic costs
/// one string hash and compare and allocates nothing. Subscribe decisions (rare) scan the filter lists.
/// </summary>
internal sealed class ClientGrants : IClientGrants
{
    private const int CacheSize = 64; // power of two

    private readonly TopicTrie _topics;
    private readonly SubscribeFilter[] _subscribeAllow;
    private readonly SubscribeFilter[] _subscribeDeny;
    private CacheEntry?[]? _cache;

    private ClientGrants(CompiledPolicy policy, TopicTrie topics, SubscribeFilter[] subscribeAllow, SubscribeFilter[] subscribeDeny)
    {
        Policy = policy;
        _topics = topics;
        _subscribeAllow = subscribeAllow;
        _subscribeDeny = subscribeDeny;
    }

    public CompiledPolicy Policy { get; }

    /// <summary>Substitutes the templates of every topic rule that applies to the client and compiles the result.
    /// <paramref name="trackRules"/> keeps which rule produced each filter, for explanations.</summary>
    public static ClientGrants Resolve(CompiledPolicy policy, ClientAttributes attributes, bool trackRules = false)
    {
        var trie = new TopicTrie(trackRules);
        var subscribeAllow = new List<SubscribeFilter>();
        var subscribeDeny = new List<SubscribeFilter>();
        var filters = new List<string>();
        foreach (var rule in policy.TopicRules)
        {
            if (!rule.AppliesTo(attributes))
            {
                continue;
            }

            int flags = 0;
            if ((rule.Actions & PolicyActions.Publish) != 0)
            {
                flags |= rule.PublishMask << (rule.IsDeny ? TopicTrie.PublishDenyShift : TopicTrie.PublishAllowShift);
            }

            if ((rule.Actions & PolicyActions.Receive) != 0)
            {
                flags |= rule.IsDeny ? TopicTrie.ReceiveDeny : TopicTrie.ReceiveAllow;
            }

            if (rule.IsDeny && (rule.Actions & PolicyActions.Subscribe) != 0)
            {
                // A subscribe deny also withholds its topics from wider subscriptions, at delivery.
                flags |= TopicTrie.SubscribeDeny;
            }

            filters.Clear();
            foreach (var topic in rule.Topics)
            {
                topic.Expand(attributes, rule.IsDeny, filters);
            }

            foreach (var filter in filters)
            {
                if (flags != 0)
                {
                    trie.Add(filter, flags, rule);
                }

                if ((rule.Actions & PolicyActions.Subscribe) != 0)
                {
                    (rule.IsDeny ? subscribeDeny : subscribeAllow).Add(new SubscribeFilter(TopicFilters.Split(filter), filter, rule));
                }
            }
        }

        trie.Freeze();
        return new ClientGrants(policy, trie, [.. subscribeAllow], [.. subscribeDeny]);
    }

    public bool CanPublish(string topic, MqttQos qos, bool retain)
    {
        if ((uint)qos > 2)
        {
            return false;
        }

        int flags = Flags(topic);
        int bit = ((int)qos << 1) | (retain ? 1 : 0);
        return ((flags >> (TopicTrie.PublishAllowShift + bit)) & 1) != 0
            && ((flags >> (TopicTrie.PublishDenyShift + bit)) & 1) == 0;
    }

    /// <summary>Delivery: some receive allow matches the topic, and no receive deny nor subscribe deny does (a
    /// subscription wider than a subscribe deny was granted; the deny's topics are withheld here).</summary>
    public bool CanReceive(string topic)
    {
        int flags = Flags(topic);
        return (flags & (TopicTrie.ReceiveAllow | TopicTrie.ReceiveDeny | TopicTrie.SubscribeDeny)) == TopicTrie.ReceiveAllow;
    }

    public bool CanSubscribe(string filter) => DecideSubscribe(filter, null, out _, out _);

    /// <summary>
    /// Allowed when some allow grant contains the whole filter and no deny grant contains it. A deny that only
    /// overlaps the filter (deny "test/nosubscribe", request "#") does not refuse it: the subscription is granted and
    /// the deny's topics are withheld at delivery (<see cref="CanReceive"/>), so a deny never makes every wider
    /// filter unsubscribable, and still nothing it names is ever delivered.
    /// </summary>
    internal bool DecideSubscribe(string filter, List<Contribution>? trace, out CompiledRule? firstDeny, out CompiledRule? firstAllow)
    {
        firstDeny = null;
        firstAllow = null;
        if (!MqttTopic.IsValidTopicFilter(filter))
        {
            return false;
        }

        var inner = MqttTopic.TopicFilterOf(filter);

        foreach (var deny in _subscribeDeny)
        {
            if (TopicFilters.Contains(deny.Levels, inner, isDeny: true))
            {
                trace?.Add(new Contribution(deny.Rule, deny.Filter, 0));
                if (firstDeny is null || deny.Rule.Ordinal < firstDeny.Ordinal)
                {
                    firstDeny = deny.Rule;
                }

                if (trace is null)
                {
                    return false;
                }
            }
        }

        foreach (var allow in _subscribeAllow)
        {
            if (TopicFilters.Contains(allow.Levels, inner))
            {
                trace?.Add(new Contribution(allow.Rule, allow.Filter, 0));
                if (firstAllow is null || allow.Rule.Ordinal < firstAllow.Ordinal)
                {
                    firstAllow = allow.Rule;
                }

                if (trace is null)
                {
                    break;
                }
            }
        }

        return firstDeny is null && firstAllow is not null;
    }

    /// <summary>The subscribe denies that overlap <paramref name="filter"/> without containing it: a granted
    /// subscription to the filter does not deliver their topics (for explanations).</summary>
    internal List<SubscribeFilter> WithheldFrom(string filter)
    {
        var withheld = new List<SubscribeFilter>();
        if (MqttTopic.IsValidTopicFilter(filter))
        {
            var inner = MqttTopic.TopicFilterOf(filter);
            foreach (var deny in _subscribeDeny)
            {
                if (TopicFilters.Overlaps(deny.Levels, inner) && !TopicFilters.Contains(deny.Levels, inner, isDeny: true))
                {
                    withheld.Add(deny);
                }
            }
        }

        return withheld;
    }

    /// <summary>Decision flags for a topic, with the rules behind them (no cache).</summary>
    internal int TraceTopic(string topic, List<Contribution> trace) =>
        MqttTopic.IsValidTopicName(topic) ? _topics.Match(topic, trace) : 0;

    /// <summary>Decision flags straight from the trie, bypassing the cache (benchmarks, tests).</summary>
    internal int UncachedFlags(string topic) => MqttTopic.IsValidTopicName(topic) ? _topics.Match(topic) : 0;

    private int Flags(string topic)
    {
        int hash = topic.GetHashCode();
        var cache = _cache ??= new CacheEntry?[CacheSize];
        ref var slot = ref cache[hash & (CacheSize - 1)];
        var entry = Volatile.Read(ref slot);
        if (entry is not null && entry.Hash == hash && (ReferenceEquals(entry.Topic, topic) || entry.Topic == topic))
        {
            return entry.Flags;
        }

        int flags = MqttTopic.IsValidTopicName(topic) ? _topics.Match(topic) : 0;

        // Racing writers may overwrite each other's entry; any entry is a correct answer for its own topic.
        Volatile.Write(ref slot, new CacheEntry(topic, hash, flags));
        return flags;
    }

    private sealed class CacheEntry(string topic, int hash, int flags)
    {
        public readonly string Topic = topic;
        public readonly int Hash = hash;
        public readonly int Flags = flags;
    }
}
