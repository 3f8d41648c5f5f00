namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Subscriptions of all sessions, as a trie with one node per topic level: a dictionary for literal levels plus
/// dedicated '+' and '#' children. Matching a topic walks at most the topic's levels through literal, '+' and
/// '#' edges, so its cost depends on the topic depth and the number of matching subscriptions, not on the total
/// number of subscriptions (MQTT 5.0 §4.7). Lookups by level use span-keyed alternate lookups: no allocation per
/// level. Readers (PUBLISH fan-out, many threads) share a read lock; SUBSCRIBE/UNSUBSCRIBE take the write lock.
/// The walk is iterative so a hostile topic with thousands of levels cannot overflow the stack.
/// </summary>
internal sealed class SubscriptionIndex : IDisposable
{
    [ThreadStatic]
    private static Stack<(Node Node, int Start)>? t_work;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Node _root = new(null, "");
    private int _count;

    /// <summary>Subscriptions in the index (non-shared plus every member of every share group).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Told of every subscription entering and leaving the index (cluster interest); set before use.</summary>
    public Abstractions.IClusterLink? Observer { get; set; }

    /// <summary>Adds <paramref name="subscription"/>, replacing the subscription of the same session with the same
    /// filter (and share group) if any. Returns the replaced subscription.</summary>
    public Subscription? Add(Subscription subscription)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            foreach (var range in subscription.TopicFilter.AsSpan().Split('/'))
            {
                var level = subscription.TopicFilter[range];
                node = level switch
                {
                    "+" => node.Plus ??= new Node(node, level),
                    "#" => node.Hash ??= new Node(node, level),
                    _ => node.GetOrAddChild(level),
                };
            }

            Subscription? replaced;
            if (subscription.ShareGroup is { } groupName)
            {
                node.Groups ??= new Dictionary<string, SharedGroup>(StringComparer.Ordinal);
                if (!node.Groups.TryGetValue(groupName, out var group))
                {
                    group = new SharedGroup(groupName, subscription.TopicFilter);
                    node.Groups.Add(groupName, group);
                }
                replaced = group.AddOrReplace(subscription);
            }
            else
            {
                node.Subscribers ??= new Dictionary<MqttSession, Subscription>(ReferenceEqualityComparer.Instance);
                node.Subscribers.TryGetValue(subscription.Session, out replaced);
                node.Subscribers[subscription.Session] = subscription;
            }

            if (replaced is null)
            {
                _count++;
                Observer?.FilterAdded(subscription.TopicFilter, subscription.ShareGroup);
            }
            return replaced;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Removes exactly <paramref name="subscription"/> (not a newer replacement). Empty nodes are pruned.</summary>
    public bool Remove(Subscription subscription)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            foreach (var range in subscription.TopicFilter.AsSpan().Split('/'))
            {
                var level = subscription.TopicFilter.AsSpan(range);
                Node? next = level switch
                {
                    "+" => node.Plus,
                    "#" => node.Hash,
                    _ => node.Children is null ? null : node.ChildLookup.TryGetValue(level, out var c) ? c : null,
                };
                if (next is null)
                {
                    return false;
                }
                node = next;
            }

            bool removed;
            if (subscription.ShareGroup is { } groupName)
            {
                removed = false;
                if (node.Groups is not null && node.Groups.TryGetValue(groupName, out var group) && group.Remove(subscription))
                {
                    removed = true;
                    if (group.Members.Length == 0)
                    {
                        node.Groups.Remove(groupName);
                    }
                }
            }
            else
            {
                removed = node.Subscribers is not null
                    && node.Subscribers.TryGetValue(subscription.Session, out var current)
                    && ReferenceEquals(current, subscription)
                    && node.Subscribers.Remove(subscription.Session);
            }

            if (removed)
            {
                _count--;
                Observer?.FilterRemoved(subscription.TopicFilter, subscription.ShareGroup);
                Prune(node);
            }
            return removed;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Appends the non-shared subscriptions matching <paramref name="topic"/> to <paramref name="subscriptions"/>
    /// (one entry per matching subscription; a session with overlapping filters appears several times) and the
    /// matching share groups to <paramref name="groups"/>. '$'-topics are not matched by filters starting with a
    /// wildcard [MQTT-4.7.2-1].</summary>
    public void Match(string topic, List<Subscription> subscriptions, List<SharedGroup> groups)
    {
        var work = t_work ??= new Stack<(Node, int)>();
        work.Clear();
        var dollar = topic.Length > 0 && topic[0] == '$';

        _lock.EnterReadLock();
        try
        {
            // The root is handled apart: its '+' and '#' children must not match '$' topics.
            var root = _root;
            if (!dollar && root.Hash is { } rootHash)
            {
                Collect(rootHash, subscriptions, groups);
            }
            var firstEnd = topic.IndexOf('/');
            if (firstEnd < 0)
            {
                firstEnd = topic.Length;
            }
            if (root.Children is not null && root.ChildLookup.TryGetValue(topic.AsSpan(0, firstEnd), out var first))
            {
                work.Push((first, firstEnd + 1));
            }
            if (!dollar && root.Plus is { } rootPlus)
            {
                work.Push((rootPlus, firstEnd + 1));
            }

            while (work.Count > 0)
            {
                var (node, start) = work.Pop();
                if (node.Hash is { } hash)
                {
                    // '#' matches the remaining levels, and also the parent level itself ("a/#" matches "a").
                    Collect(hash, subscriptions, groups);
                }

                if (start > topic.Length)
                {
                    Collect(node, subscriptions, groups);
                    continue;
                }

                var end = topic.IndexOf('/', start);
                if (end < 0)
                {
                    end = topic.Length;
                }
                if (node.Children is not null && node.ChildLookup.TryGetValue(topic.AsSpan(start, end - start), out var child))
                {
                    work.Push((child, end + 1));
                }
                if (node.Plus is { } plus)
                {
                    work.Push((plus, end + 1));
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
            work.Clear();
        }
    }

    public void Dispose() => _lock.Dispose();

    private static void Collect(Node node, List<Subscription> subscriptions, List<SharedGroup> groups)
    {
        if (node.Subscribers is { Count: > 0 } subscribers)
        {
            foreach (var subscription in subscribers.Values)
            {
                subscriptions.Add(subscription);
            }
        }
        if (node.Groups is { Count: > 0 } shared)
        {
            foreach (var group in shared.Values)
            {
                groups.Add(group);
            }
        }
    }

    private static void Prune(Node node)
    {
        while (node.Parent is { } parent && node.IsEmpty)
        {
            if (ReferenceEquals(parent.Plus, node))
            {
                parent.Plus = null;
            }
            else if (ReferenceEquals(parent.Hash, node))
            {
                parent.Hash = null;
            }
            else
            {
                parent.Children!.Remove(node.Level);
            }
            node = parent;
        }
    }

    private sealed class Node
    {
        private Dictionary<string, Node>? _children;

        public Node(Node? parent, string level)
        {
            Parent = parent;
            Level = level;
        }

        public Node? Parent { get; }
        public string Level { get; }
        public Dictionary<string, Node>? Children => _children;
        public Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> ChildLookup { get; private set; }
        public Node? Plus { get; set; }
        public Node? Hash { get; set; }
        public Dictionary<MqttSession, Subscription>? Subscribers { get; set; }
        public Dictionary<string, SharedGroup>? Groups { get; set; }

        public bool IsEmpty =>
            (_children is null || _children.Count == 0) && Plus is null && Hash is null
            && (Subscribers is null || Subscribers.Count == 0) && (Groups is null || Groups.Count == 0);

        public Node GetOrAddChild(string level)
        {
            if (_children is null)
            {
                _children = new Dictionary<string, Node>(StringComparer.Ordinal);
                ChildLookup = _children.GetAlternateLookup<ReadOnlySpan<char>>();
            }
            if (!_children.TryGetValue(level, out var child))
            {
                child = new Node(this, level);
                _children.Add(level, child);
            }
            return child;
        }
    }
}

/// <summary>The members of one share group on one filter (<c>$share/{Name}/{TopicFilter}</c>). Each message goes
/// to exactly one member, chosen round-robin by the broker [MQTT-4.8.2-3]. Members are a copy-on-write array so the
/// broker can choose outside the index lock.</summary>
internal sealed class SharedGroup
{
    private Subscription[] _members = [];
    private int _next = -1;

    public SharedGroup(string name, string topicFilter)
    {
        Name = name;
        TopicFilter = topicFilter;
    }

    public string Name { get; }
    public string TopicFilter { get; }
    public Subscription[] Members => Volatile.Read(ref _members);

    /// <summary>Start index for the next round-robin choice.</summary>
    public int NextStart(int memberCount) => (int)((uint)Interlocked.Increment(ref _next) % (uint)memberCount);

    internal Subscription? AddOrReplace(Subscription subscription)
    {
        var members = _members;
        for (var i = 0; i < members.Length; i++)
        {
            if (ReferenceEquals(members[i].Session, subscription.Session))
            {
                var copy = (Subscription[])members.Clone();
                var replaced = copy[i];
                copy[i] = subscription;
                Volatile.Write(ref _members, copy);
                return replaced;
            }
        }
        Volatile.Write(ref _members, [.. members, subscription]);
        return null;
    }

    internal bool Remove(Subscription subscription)
    {
        var members = _members;
        var index = Array.IndexOf(members, subscription);
        if (index < 0)
        {
            return false;
        }
        Volatile.Write(ref _members, [.. members.AsSpan(0, index), .. members.AsSpan(index + 1)]);
        return true;
    }
}
