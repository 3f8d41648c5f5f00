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
/// <remarks>
/// The consumer is pulled: the node's pull request lives only on the server that leads the consumer. When that server
/// dies, the request dies with it, and nothing tells the node while its own NATS connection stays up (another server).
/// The client renews the request when the server's idle heartbeats stop for twice the heartbeat interval, so the
/// heartbeat is short (a quarter of the node timeout, the bound on such a stall); the 30 s default let an acknowledged
/// message wait in the inbox for up to 30 s, more when the renewal itself fell into a leader election (the CI stall).
/// <see cref="InboxWatch"/> is the second line: it restarts the consumption when messages wait and nothing pulls.
/// </remarks>
internal sealed class InboxConsumer(ClusterOptions options, MqttBroker broker, ILogger logger)
{
    // Never more unacknowledged messages in flight than the client's subscription buffer holds (NATS.Net: 16,384,
    // newest dropped when full), even when renewed pull requests pile up while a slow local subscriber holds the loop.
    private const int MaxAckPending = 10_000;
    private const int PullBatch = 500;

    private long _received;
    private long _lastReceivedTicks;
    private int _idle = 1;
    private CancellationTokenSource _restart = new();

    public long Received => Interlocked.Read(ref _received);

    /// <summary>Whether the loop waits for the next message (holds none in hand), and when it last received one.</summary>
    public bool IsIdle => Volatile.Read(ref _idle) == 1;

    public long LastReceivedTicks => Interlocked.Read(ref _lastReceivedTicks);

    /// <summary>How long the server waits before telling an idle consumer it is still there; twice this without a word,
    /// and the client asks again.</summary>
    public static TimeSpan IdleHeartbeat(ClusterOptions options) =>
        TimeSpan.FromTicks(Math.Clamp(options.NodeTimeout.Ticks / 4, TimeSpan.FromMilliseconds(500).Ticks, TimeSpan.FromSeconds(5).Ticks));

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
            MaxAckPending = MaxAckPending,
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the current consumption and starts another (a new pull request to the current leader).</summary>
    public void Restart()
    {
        var previous = Interlocked.Exchange(ref _restart, new CancellationTokenSource());
        previous.Cancel();
        previous.Dispose();
    }

    public Task RunAsync(INatsJSContext js, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "inbox", async token =>
        {
            INatsJSConsumer consumer;
            try
            {
                consumer = await js.GetConsumerAsync(ClusterNames.InboxStream(options.NodeId), ClusterNames.InboxConsumer, token).ConfigureAwait(false);
            }
            catch (NatsJSApiException ex) when (ex.Error.Code == 404)
            {
                // The stream or its consumer is gone (servers replaced, an operator's mistake): made again.
                logger.OperationFailed("inbox", ex.Message);
                await EnsureAsync(js, token).ConfigureAwait(false);
                return;
            }
            var heartbeat = IdleHeartbeat(options);
            var opts = new NatsJSConsumeOpts { MaxMsgs = PullBatch, IdleHeartbeat = heartbeat, Expires = heartbeat * 8 };
            await using var messages = consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: token).GetAsyncEnumerator(token);
            while (true)
            {
                Volatile.Write(ref _idle, 1);
                if (!await messages.MoveNextAsync().ConfigureAwait(false))
                {
                    return;
                }
                Volatile.Write(ref _idle, 0);
                var message = messages.Current;
                Interlocked.Exchange(ref _lastReceivedTicks, Environment.TickCount64);
                string? share = message.Headers is { } headers && headers.TryGetValue(SharedGroupRouting.Header, out var values) ? values.ToString() : null;
                if (message.Data is { } data && MessageCodec.TryDecode(data, out var stored)
                    && SharedGroupRouting.TryDecode(share, out var groups))
                {
                    // Waits while a local subscriber's queue is full: the inbox (durable) holds the rest meanwhile.
                    await broker.DeliverFromClusterAsync(stored!, groups, token).ConfigureAwait(false);
                    Interlocked.Increment(ref _received);
                }
                else
                {
                    logger.Undecodable("inbox");
                }
                await message.AckAsync(cancellationToken: token).ConfigureAwait(false);
            }
        }, () => _restart.Token, cancellationToken);
}
