namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Retained messages, one per topic (MQTT 5.0 §3.3.1.3), in a trie by topic level so a subscription's filter
/// visits only the matching branches. A retained PUBLISH with an empty payload clears the topic
/// [MQTT-3.3.1-6], [MQTT-3.3.1-7]. Expired messages (5.0 Message Expiry Interval) are skipped and removed lazily.
/// </summary>
internal sealed class RetainedMessageStore : IDisposable
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Node _root = new(null, "");
    private readonly RetainedUsage _usage = new();
    private int _count;

    public int Count => Volatile.Read(ref _count);

    /// <summary>Payload bytes of every retained message.</summary>
    public long Bytes => _usage.TotalBytes;

    /// <summary>Stores, replaces or (empty payload) clears the retained message of the message's topic.</summary>
    public void Set(MqttApplicationMessage message) => TrySet(message, limits: null);

    /// <summary>As <see cref="Set"/>, unless storing would exceed one of <paramref name="limits"/> (a clear never does):
    /// then nothing changes and the name of the exceeded limit (a LimitMetrics.Limits value) is returned.</summary>
    public string? TrySet(MqttApplicationMessage message, RetainedLimits? limits)
    {
        if (message.Payload.Length == 0)
        {
            Remove(message.Topic);
            return null;
        }

        _lock.EnterWriteLock();
        try
        {
            var existing = Find(message.Topic)?.Message;
            if (limits is not null && _usage.Exceeds(existing, message, _count, limits) is { } exceeded)
            {
                return exceeded;
            }
            var node = _root;
            foreach (var range in message.Topic.AsSpan().Split('/'))
            {
                node = node.GetOrAddChild(message.Topic[range]);
            }
            if (node.Message is null)
            {
                _count++;
            }
            else
            {
                _usage.Remove(node.Message);
            }
            _usage.Add(message);
            node.Message = message;
            return null;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Remove(string topic) => Remove(topic, expected: null);

    public MqttApplicationMessage? Get(string topic)
    {
        _lock.EnterReadLock();
        try
        {
            return Find(topic)?.Message;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Appends the live retained messages whose topic matches <paramref name="topicFilter"/> (a non-shared
    /// filter). '$'-topics are not matched by a leading wildcard [MQTT-4.7.2-1].</summary>
    public void Match(string topicFilter, DateTimeOffset now, List<MqttApplicationMessage> result)
    {
        var levels = topicFilter.Split('/');
        var work = new Stack<(Node Node, int Level)>();
        List<MqttApplicationMessage>? expired = null;

        _lock.EnterReadLock();
        try
        {
            work.Push((_root, 0));
            while (work.Count > 0)
            {
                var (node, index) = work.Pop();
                if (index == levels.Length)
                {
                    Add(node.Message);
                    continue;
                }

                var level = levels[index];
                if (level == "#")
                {
                    // Everything below, and the parent level itself ("a/#" matches "a") [MQTT-4.7.1-2].
                    var all = new Stack<Node>();
                    if (ReferenceEquals(node, _root))
                    {
                        PushChildren(all, node, skipDollar: true);
                    }
                    else
                    {
                        all.Push(node);
                    }
                    while (all.Count > 0)
                    {
                        var n = all.Pop();
                        Add(n.Message);
                        PushChildren(all, n, skipDollar: false);
                    }
                }
                else if (level == "+")
                {
                    if (node.Children is { } children)
                    {
                        var atRoot = ReferenceEquals(node, _root);
                        foreach (var child in children.Values)
                        {
                            if (!(atRoot && child.Level.StartsWith('$')))
                            {
                                work.Push((child, index + 1));
                            }
                        }
                    }
                }
                else if (node.Children is { } children && children.TryGetValue(level, out var child))
                {
                    work.Push((child, index + 1));
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }

        if (expired is not null)
        {
            foreach (var message in expired)
            {
                Remove(message.Topic, message);
            }
        }

        void Add(MqttApplicationMessage? message)
        {
            if (message is null)
            {
                return;
            }
            if (message.IsExpired(now))
            {
                (expired ??= []).Add(message);
                return;
            }
            result.Add(message);
        }
    }

    public void Dispose() => _lock.Dispose();

    private static void PushChildren(Stack<Node> stack, Node node, bool skipDollar)
    {
        if (node.Children is null)
        {
            return;
        }
        foreach (var child in node.Children.Values)
        {
            if (!(skipDollar && child.Level.StartsWith('$')))
            {
                stack.Push(child);
            }
        }
    }

    private bool Remove(string topic, MqttApplicationMessage? expected)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = Find(topic);
            if (node?.Message is null || (expected is not null && !ReferenceEquals(node.Message, expected)))
            {
                return false;
            }
            _usage.Remove(node.Message);
            node.Message = null;
            _count--;
            while (node.Parent is { } parent && node.Message is null && (node.Children is null || node.Children.Count == 0))
            {
                parent.Children!.Remove(node.Level);
                node = parent;
            }
            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private Node? Find(string topic)
    {
        var node = _root;
        foreach (var range in topic.AsSpan().Split('/'))
        {
            if (node.Children is null || !node.ChildLookup.TryGetValue(topic.AsSpan(range), out var child))
            {
                return null;
            }
            node = child;
        }
        return node;
    }

    private sealed class Node
    {
        public Node(Node? parent, string level)
        {
            Parent = parent;
            Level = level;
        }

        public Node? Parent { get; }
        public string Level { get; }
        public Dictionary<string, Node>? Children { get; private set; }
        public Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> ChildLookup { get; private set; }
        public MqttApplicationMessage? Message { get; set; }

        public Node GetOrAddChild(string level)
        {
            if (Children is null)
            {
                Children = new Dictionary<string, Node>(StringComparer.Ordinal);
                ChildLookup = Children.GetAlternateLookup<ReadOnlySpan<char>>();
            }
            if (!Children.TryGetValue(level, out var child))
            {
                child = new Node(this, level);
                Children.Add(level, child);
            }
            return child;
        }
    }
}
