using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

/// <summary>
/// This node's durable inbox: a work-queue stream on <c>omni.inbox.{node}</c> that other nodes forward to, consumed by
/// one durable consumer with explicit acks, in stream order (so in order per publisher). A message is acknowledged to
/// JetStream after it is queued for the local subscribers; a node that dies before that gets it again when it
/// restarts (at least once across a crash).
/// </summary>
internal sealed class InboxConsumer(ClusterOptions options, MqttBroker broker, ILogger logger)
{
    private long _received;

    public long Received => Interlocked.Read(ref _received);

    public async Task EnsureAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        var stream = ClusterNames.InboxStream(options.NodeId);
        await js.CreateOrUpdateStreamAsync(new StreamConfig(stream, [ClusterNames.InboxSubject(options.NodeId)])
        {
            Retention = StreamConfigRetention.Workqueue,
            Storage = StreamConfigStorage.File,
            NumReplicas = options.Replicas,
            // A node that never comes back must not fill the servers forever.
            MaxAge = TimeSpan.FromDays(1),
        }, cancellationToken).ConfigureAwait(false);
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(ClusterNames.InboxConsumer)
        {
            DurableName = ClusterNames.InboxConsumer,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = TimeSpan.FromSeconds(30),
            MaxAckPending = 20_000,
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task RunAsync(INatsJSContext js, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "inbox", async token =>
        {
            var consumer = await js.GetConsumerAsync(ClusterNames.InboxStream(options.NodeId), ClusterNames.InboxConsumer, token).ConfigureAwait(false);
            await foreach (var message in consumer.ConsumeAsync<byte[]>(opts: new NatsJSConsumeOpts { MaxMsgs = 1000 }, cancellationToken: token)
                .ConfigureAwait(false))
            {
                if (message.Data is { } data && MessageCodec.TryDecode(data, out var stored))
                {
                    // Waits while a local subscriber's queue is full: the inbox (durable) holds the rest meanwhile.
                    await broker.DeliverFromClusterAsync(stored!, token).ConfigureAwait(false);
                    Interlocked.Increment(ref _received);
                }
                else
                {
                    logger.Undecodable("inbox");
                }
                await message.AckAsync(cancellationToken: token).ConfigureAwait(false);
            }
        }, () => CancellationToken.None, cancellationToken);
}
