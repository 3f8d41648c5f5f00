using System.Diagnostics;
using System.Globalization;
using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using OmniBroker.Tests.EndToEnd;
using Xunit;
using static OmniBroker.Tests.Cluster.ClusterProbes;

namespace OmniBroker.Tests.Cluster;

/// <summary>Persistent sessions that follow their device from node to node.</summary>
public sealed partial class ClusterEndToEndTests
{
    private static readonly Action<MqttClientOptionsBuilder> s_movingSession = o => o.WithCleanStart(false).WithSessionExpiryInterval(600);

    [Fact]
    public async Task OfflineSession_SubscribedOnA_ReceivesOnBTheTenMessagesPublishedWhileAway()
    {
        const string client = "move-offline";
        await using var publisher = await cluster.ConnectAsync(cluster.C, "move-offline-pub", "sensor-002");
        await using (var onA = await cluster.ConnectAsync(cluster.A, client, configure: s_movingSession))
        {
            await onA.SubscribeAsync("cluster/away/#", MqttQualityOfServiceLevel.AtLeastOnce);
            await WaitForRouteAsync(publisher, "cluster/away/probe");
            (await WaitForAsync(onA, m => m.Topic == "cluster/away/probe", 1)).Should().BeTrue(cluster.Describe());
        }

        for (var i = 0; i < 10; i++)
        {
            (await PublishUntilAcknowledgedAsync(publisher, "cluster/away/m" + i.ToString(CultureInfo.InvariantCulture), "while away"))
                .Should().Be(MqttClientPublishReasonCode.Success);
        }
        await Task.Delay(500); // A queues them in the offline session (its inbox acknowledged each)

        var moved = Stopwatch.StartNew();
        await using var onB = await cluster.ConnectAsync(cluster.B, client, configure: s_movingSession);
        output.WriteLine($"CONNACK on B {moved.ElapsedMilliseconds} ms after the connect, session present {onB.ConnectResult?.IsSessionPresent}");

        onB.ConnectResult!.IsSessionPresent.Should().BeTrue("the session moved from A to B");
        (await WaitForAsync(onB, m => m.Topic.StartsWith("cluster/away/m", StringComparison.Ordinal), 10)).Should().BeTrue(cluster.Describe());
        onB.Received.Where(m => m.Topic.StartsWith("cluster/away/m", StringComparison.Ordinal)).Select(m => m.Topic).Distinct()
            .Should().HaveCount(10);
        // Its subscription came along: a new message published on C reaches it on B.
        (await PublishUntilAcknowledgedAsync(publisher, "cluster/away/after", "after the move")).Should().Be(MqttClientPublishReasonCode.Success);
        (await WaitForAsync(onB, m => m.Topic == "cluster/away/after", 1)).Should().BeTrue(cluster.Describe());
    }

    [Fact]
    public async Task Takeover_FromAToBDuring500MessageQos1Flow_LosesNothingAndSessionPresent()
    {
        const string client = "move-flow";
        const int count = 500;
        await using var publisher = await cluster.ConnectAsync(cluster.C, "move-flow-pub", "sensor-002");
        var onA = await cluster.ConnectAsync(cluster.A, client, configure: s_movingSession);
        await onA.SubscribeAsync("cluster/flow/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await WaitForRouteAsync(publisher, "cluster/flow/probe");
        (await WaitForAsync(onA, m => m.Topic == "cluster/flow/probe", 1)).Should().BeTrue(cluster.Describe());

        // The publisher goes on while the device moves: messages keep arriving at A, at B, or both, during the move.
        var acknowledged = new List<int>();
        var third = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                if (await PublishUntilAcknowledgedAsync(publisher, "cluster/flow/m", i.ToString(CultureInfo.InvariantCulture)) == MqttClientPublishReasonCode.Success)
                {
                    lock (acknowledged)
                    {
                        acknowledged.Add(i);
                    }
                }
                if (i == count / 3)
                {
                    third.TrySetResult();
                }
            }
        });
        await third.Task.WaitAsync(Spread);
        var clock = Stopwatch.StartNew();
        var onB = await cluster.ConnectAsync(cluster.B, client, configure: s_movingSession);
        var moveTime = clock.ElapsedMilliseconds;
        onB.ConnectResult!.IsSessionPresent.Should().BeTrue("the session moved from A to B");
        await publishing.WaitAsync(TimeSpan.FromMinutes(3));

        await using (onB)
        {
            var deadline = DateTime.UtcNow + Spread;
            HashSet<int> Received() => [.. onA.Received.Concat(onB!.Received).Where(m => m.Topic == "cluster/flow/m")
                .Select(m => int.Parse(m.ConvertPayloadToString(), CultureInfo.InvariantCulture))];
            while (!acknowledged.All(Received().Contains) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            var received = Received();
            var deliveries = onA.Received.Concat(onB!.Received).Count(m => m.Topic == "cluster/flow/m");
            var lost = acknowledged.Where(i => !received.Contains(i)).ToList();
            output.WriteLine($"takeover A to B during {count} QoS 1 messages: {acknowledged.Count} acknowledged, {lost.Count} lost, "
                + $"{deliveries - received.Count} duplicates (lost: {string.Join(",", lost)}), CONNACK on B after {moveTime} ms; A got {onA.Received.Count(m => m.Topic == "cluster/flow/m")}, B got {onB.Received.Count(m => m.Topic == "cluster/flow/m")}");
            acknowledged.Should().HaveCount(count, "every publish is acknowledged in the end (retried when refused during the move)");
            lost.Should().BeEmpty(cluster.Describe());
        }
        await onA.DisposeAsync();
    }
}
