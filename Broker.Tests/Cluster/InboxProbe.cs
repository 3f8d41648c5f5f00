using System.Globalization;
using FluentAssertions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// The test's own view, over NATS, of a node's inbox (stream OMNI_INBOX_{node}, durable consumer "deliver"): which
/// server leads the consumer, how many messages wait, how many pull requests the leader holds. This is what showed why
/// an acknowledged message could sit in an inbox: the consumer's leader died with the node's only pull request.
/// </summary>
internal sealed class InboxProbe(NatsConnection nats, string nodeId)
{
    private readonly INatsJSContext _js = nats.CreateJetStreamContext();

    public string Stream => "OMNI_INBOX_" + nodeId;

    /// <summary>The consumer's state, or null while JetStream cannot answer (a leader election).</summary>
    public async Task<ConsumerInfo?> InfoAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            return (await _js.GetConsumerAsync(Stream, "deliver", timeout.Token)).Info;
        }
        catch (NatsException)
        {
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public static string Describe(ConsumerInfo? info) => info is null
        ? "consumer info unavailable"
        : $"leader {info.Cluster?.Leader}, pending {info.NumPending}, ack pending {info.NumAckPending}, waiting pulls {info.NumWaiting}, "
          + $"delivered stream seq {info.Delivered?.StreamSeq}, ack floor {info.AckFloor?.StreamSeq}";

    /// <summary>Index of the nats-server leading the consumer (server names are nats-{index}).</summary>
    public async Task<int> LeaderAsync(TimeSpan timeout, int? not = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var leader = (await InfoAsync())?.Cluster?.Leader;
            if (leader is not null && leader.StartsWith("nats-", StringComparison.Ordinal))
            {
                var index = int.Parse(leader.AsSpan(5), CultureInfo.InvariantCulture);
                if (index != not)
                {
                    return index;
                }
            }
            DateTime.UtcNow.Should().BeBefore(deadline, $"{Stream} should have a consumer leader other than nats-{not}");
            await Task.Delay(200);
        }
    }

    /// <summary>Asks the consumer's leader to step down until another server than nats-<paramref name="avoid"/> leads,
    /// and the node's pull request is registered there.</summary>
    public async Task<int> MoveLeaderOffAsync(int avoid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var leader = await LeaderAsync(deadline - DateTime.UtcNow);
            if (leader != avoid)
            {
                await WaitForPullAsync(deadline - DateTime.UtcNow);
                return leader;
            }
            try
            {
                await nats.RequestAsync<byte[], byte[]>($"$JS.API.CONSUMER.LEADER.STEPDOWN.{Stream}.deliver", [],
                    replyOpts: new NatsSubOpts { Timeout = TimeSpan.FromSeconds(5) });
            }
            catch (NatsException)
            {
                // A leader election already runs: look again.
            }
            await Task.Delay(500);
        }
    }

    /// <summary>Waits until the consumer's leader holds a pull request of the node (it can deliver at once).</summary>
    public async Task WaitForPullAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while ((await InfoAsync())?.NumWaiting is not > 0)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, $"{Stream}'s consumer should hold a pull request of the node");
            await Task.Delay(200);
        }
    }
}
