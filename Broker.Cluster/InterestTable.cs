using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.KeyValueStore;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Cluster;

/// <summary>
/// Which node wants which topics. Locally: a count per topic filter of the subscriptions in this node's index; a
/// filter's first subscription puts <c>{node}.{hash}</c> into the interest bucket, its last one deletes it (in order,
/// by one writer). Remotely: a watch of the whole bucket keeps, per node, an immutable array of its filters, which the
/// publishing threads read without locks to choose the nodes a message is forwarded to. A share group's subscriptions
/// count apart from plain ones on the same filter: their value is <c>\0{group}\0{filter}</c> (no topic filter holds
/// U+0000 [MQTT-4.7.3-2], so a node that does not know groups reads a filter that matches nothing).
/// </summary>
internal sealed class InterestTable(string nodeId, ILogger logger)
{
    private readonly Dictionary<string, int> _local = new(StringComparer.Ordinal);
    private readonly Channel<(string Filter, bool Added)> _changes = Channel.CreateUnbounded<(string, bool)>(new UnboundedChannelOptions { SingleReader = true });
    // Written by the watch task only; readers take the reference.
    private volatile Dictionary<string, NodeInterest> _remote = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, string>> _byNode = new(StringComparer.Ordinal);

    /// <summary>Called under the subscription index lock: counts, and queues the bucket write when the count
    /// leaves or reaches zero.</summary>
    public void Changed(string topicFilter, string? shareGroup, bool added)
    {
        var filter = shareGroup is null ? topicFilter : "\0" + shareGroup + "\0" + topicFilter;
        lock (_local)
        {
            _local.TryGetValue(filter, out var count);
            count += added ? 1 : -1;
            if (count <= 0)
            {
                _local.Remove(filter);
            }
            else
            {
                _local[filter] = count;
            }
            if ((added && count == 1) || (!added && count == 0))
            {
                _changes.Writer.TryWrite((filter, added));
            }
        }
    }

    /// <summary>Adds the nodes (other than this one, and alive) with a plain filter matching <paramref name="topic"/> to
    /// <paramref name="targets"/>, and each (group, node) with a member of a share group whose filter matches to
    /// <paramref name="groups"/>.</summary>
    public void Match(string topic, Func<string, bool> isAlive, List<string> targets, List<(SharedGroupKey Group, string Node)> groups)
    {
        foreach (var (node, interest) in _remote)
        {
            if (!isAlive(node))
            {
                continue;
            }
            foreach (var filter in interest.Filters)
            {
                if (MqttTopic.Matches(filter, topic))
                {
                    targets.Add(node);
                    break;
                }
            }
            foreach (var group in interest.Groups)
            {
                if (MqttTopic.Matches(group.TopicFilter, topic))
                {
                    groups.Add((group, node));
                }
            }
        }
    }

    /// <summary>Writes this node's filter changes to the bucket, after removing what an earlier run of this node left.</summary>
    public async Task RunWriterAsync(INatsKVStore bucket, CancellationToken cancellationToken)
    {
        var stale = new List<string>();
        await ClusterRetry.RunAsync(logger, "interest cleanup", async () =>
        {
            stale.Clear();
            await foreach (var key in bucket.GetKeysAsync([nodeId + ".>"], cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                stale.Add(key);
            }
        }, cancellationToken).ConfigureAwait(false);
        foreach (var key in stale)
        {
            await ClusterRetry.RunAsync(logger, "interest cleanup", () => bucket.PurgeAsync(key, cancellationToken: cancellationToken).AsTask(),
                cancellationToken).ConfigureAwait(false);
        }

        await foreach (var (filter, added) in _changes.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            var key = nodeId + "." + ClusterNames.Hash(filter);
            await ClusterRetry.RunAsync(logger, "interest write", () => added
                ? bucket.PutAsync(key, Encoding.UTF8.GetBytes(filter), cancellationToken: cancellationToken).AsTask()
                : bucket.PurgeAsync(key, cancellationToken: cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Follows the whole bucket (every node's filters) until cancelled; re-reads it from the start after a
    /// reconnect (<paramref name="restart"/> fires).</summary>
    public Task RunWatchAsync(INatsKVStore bucket, Func<CancellationToken> restart, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "interest watch", async token =>
        {
            _byNode.Clear();
            var initial = true;
            await foreach (var entry in bucket.WatchAsync<byte[]>(">", opts: new NatsKVWatchOpts
            {
                OnNoData = _ =>
                {
                    Publish();
                    return ValueTask.FromResult(false);
                },
            }, cancellationToken: token).ConfigureAwait(false))
            {
                Apply(entry);
                if (!initial || entry.Delta == 0)
                {
                    initial = false;
                    Publish();
                }
            }
        }, restart, cancellationToken);

    private void Apply(NatsKVEntry<byte[]> entry)
    {
        var dot = entry.Key.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0)
        {
            return;
        }
        var node = entry.Key[..dot];
        if (node == nodeId)
        {
            return;
        }
        if (!_byNode.TryGetValue(node, out var filters))
        {
            _byNode[node] = filters = new Dictionary<string, string>(StringComparer.Ordinal);
        }
        if (entry.Operation == NatsKVOperation.Put && entry.Value is { } value)
        {
            filters[entry.Key] = Encoding.UTF8.GetString(value);
        }
        else
        {
            filters.Remove(entry.Key);
        }
    }

    private void Publish()
    {
        var snapshot = new Dictionary<string, NodeInterest>(StringComparer.Ordinal);
        foreach (var (node, values) in _byNode)
        {
            if (values.Count == 0)
            {
                continue;
            }
            var filters = new List<string>();
            var groups = new List<SharedGroupKey>();
            foreach (var value in values.Values)
            {
                if (value.StartsWith('\0'))
                {
                    var separator = value.IndexOf('\0', 1);
                    if (separator > 1)
                    {
                        groups.Add(new SharedGroupKey(value[1..separator], value[(separator + 1)..]));
                    }
                }
                else
                {
                    filters.Add(value);
                }
            }
            snapshot[node] = new NodeInterest([.. filters], [.. groups]);
        }
        _remote = snapshot;
    }

    /// <summary>One node's plain filters and share groups, immutable.</summary>
    private sealed record NodeInterest(string[] Filters, SharedGroupKey[] Groups);
}
