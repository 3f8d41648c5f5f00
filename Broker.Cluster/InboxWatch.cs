using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace OmniBroker.Cluster;

/// <summary>
/// Looks at this node's inbox consumer once per node timeout (one <c>CONSUMER.INFO</c> request): the inbox lag
/// (messages stored but not yet delivered here, plus delivered but not yet acknowledged) for the metrics, and a stalled
/// consumption: messages waiting, no pull request of this node held by the consumer's leader, the loop idle and
/// nothing received since the previous look, twice in a row. Then the consumption starts again. The short idle
/// heartbeat (<see cref="InboxConsumer"/>) normally renews a lost pull request before this sees it; this is the bound
/// should anything else leave the node without a pull request.
/// </summary>
internal sealed class InboxWatch(ClusterOptions options, InboxConsumer inbox, ILogger logger, TimeProvider time)
{
    private long _lag = -1;
    private long _restarts;

    /// <summary>Messages in the inbox not yet acknowledged by this node; -1 while unknown (no answer from JetStream).</summary>
    public long Lag => Interlocked.Read(ref _lag);

    public long Restarts => Interlocked.Read(ref _restarts);

    public async Task RunAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.NodeTimeout, time);
        var stalledLooks = 0;
        var lastReceived = inbox.LastReceivedTicks;
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            INatsJSConsumer consumer;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.NodeTimeout);
                consumer = await js.GetConsumerAsync(ClusterNames.InboxStream(options.NodeId), ClusterNames.InboxConsumer, timeout.Token)
                    .ConfigureAwait(false);
            }
            catch (NatsException)
            {
                Interlocked.Exchange(ref _lag, -1);
                continue;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Interlocked.Exchange(ref _lag, -1);
                continue;
            }
            var info = consumer.Info;
            Interlocked.Exchange(ref _lag, (long)info.NumPending + info.NumAckPending);
            var received = inbox.LastReceivedTicks;
            var stalled = info.NumPending > 0 && info.NumWaiting == 0 && inbox.IsIdle && received == lastReceived;
            lastReceived = received;
            stalledLooks = stalled ? stalledLooks + 1 : 0;
            if (stalledLooks >= 2)
            {
                logger.InboxStalled((long)info.NumPending);
                Interlocked.Increment(ref _restarts);
                inbox.Restart();
                stalledLooks = 0;
            }
        }
    }
}
