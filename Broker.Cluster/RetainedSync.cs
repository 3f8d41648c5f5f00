using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.KeyValueStore;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

/// <summary>
/// Retained messages cluster-wide: every node writes the retained changes it accepts to the retained bucket (key: hash
/// of the topic; a clear is written as the message with an empty payload, so that every node learns the topic) and
/// follows the bucket, applying every value, its own included, to its local retained store (the local index that
/// serves new subscriptions): all nodes converge on the bucket's last value per topic. After a reconnect to NATS the
/// watch starts again from the bucket's current content, and topics the bucket no longer holds are cleared locally.
/// </summary>
internal sealed class RetainedSync(MqttBroker broker, ILogger logger)
{
    private readonly Channel<StoredMessage> _changes = Channel.CreateUnbounded<StoredMessage>(new UnboundedChannelOptions { SingleReader = true });
    // Topic by key of what the bucket held at the last watch: the topics to clear when a resynchronised watch lacks them.
    private readonly Dictionary<string, string> _known = new(StringComparer.Ordinal);

    public void Changed(StoredMessage message) => _changes.Writer.TryWrite(message);

    public async Task RunWriterAsync(INatsKVStore bucket, CancellationToken cancellationToken)
    {
        await foreach (var message in _changes.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            var data = MessageCodec.Encode(message);
            var key = ClusterNames.Hash(message.Topic);
            await ClusterRetry.RunAsync(logger, "retained write", () => bucket.PutAsync(key, data, cancellationToken: cancellationToken).AsTask(),
                cancellationToken).ConfigureAwait(false);
        }
    }

    public Task RunWatchAsync(INatsKVStore bucket, Func<CancellationToken> restart, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "retained watch", async token =>
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var initial = true;
            await foreach (var entry in bucket.WatchAsync<byte[]>(">", opts: new NatsKVWatchOpts
            {
                OnNoData = _ =>
                {
                    if (initial)
                    {
                        initial = false;
                        ClearMissing(seen);
                    }
                    return ValueTask.FromResult(false);
                },
            }, cancellationToken: token).ConfigureAwait(false))
            {
                if (entry.Operation == NatsKVOperation.Put && entry.Value is { } value && MessageCodec.TryDecode(value, out var message))
                {
                    broker.ApplyClusterRetained(message!);
                    _known[entry.Key] = message!.Topic;
                    seen.Add(entry.Key);
                }
                else if (entry.Operation == NatsKVOperation.Put)
                {
                    logger.Undecodable("retained bucket");
                }
                if (initial && entry.Delta == 0)
                {
                    initial = false;
                    ClearMissing(seen);
                }
            }
        }, restart, cancellationToken);

    private void ClearMissing(HashSet<string> seen)
    {
        foreach (var (key, topic) in _known.ToArray())
        {
            if (!seen.Contains(key))
            {
                broker.ApplyClusterRetained(new StoredMessage(topic, [], 0, true, null, null));
                _known.Remove(key);
            }
        }
    }
}
