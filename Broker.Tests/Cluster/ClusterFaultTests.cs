using System.Diagnostics;
using System.Globalization;
using System.Text;
using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using NATS.Client.Core;
using NATS.Net;
using Xunit;
using Xunit.Abstractions;
using static OmniBroker.Tests.Cluster.ClusterProbes;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// Failures on a cluster of its own (<see cref="ClusterFixture"/>, not shared with <see cref="ClusterEndToEndTests"/>):
/// a nats-server killed, the server leading a node's inbox consumer killed, an OmniBroker node killed. Each test
/// restarts what it killed, and ends by checking that the cluster delivers again.
/// </summary>
[Collection(ClusterFixture.Collection)]
public sealed class ClusterFaultTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    /// <summary>
    /// The stall seen in CI: a cross-node QoS 1 message acknowledged (stored in A's inbox) but not delivered for 30 s.
    /// A consumes its inbox with pull requests held by the consumer's leader; when the server leading the consumer dies,
    /// the pull request dies with it, and the client noticed only when its idle-heartbeat timer (twice the heartbeat:
    /// 30 s by default) ran out. Nothing else asks again while A's own NATS connection stays up.
    /// </summary>
    [Fact]
    public async Task InboxConsumerLeaderKilled_Qos1PublishAcknowledged_DeliveredWithinSeconds()
    {
        await using var subscriber = await cluster.ConnectAsync(cluster.A, "leader-sub-a");
        await subscriber.SubscribeAsync("cluster/leader/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(0) });
        var inbox = new InboxProbe(nats, "A");
        // A's own server (nats-0) stays up: A keeps its NATS connection, so no reconnect renews its pull request.
        var leader = await inbox.MoveLeaderOffAsync(avoid: 0, TimeSpan.FromSeconds(60));
        var publisherNode = leader == 1 ? cluster.C : cluster.B;
        await using var publisher = await cluster.ConnectAsync(publisherNode, "leader-pub", "sensor-002");
        await WaitForRouteAsync(publisher, "cluster/leader/probe");
        (await WaitForAsync(subscriber, m => m.Topic == "cluster/leader/probe", 1)).Should().BeTrue(cluster.Describe());
        output.WriteLine($"before: {InboxProbe.Describe(await inbox.InfoAsync())}");

        cluster.Nats.Kill(leader);
        try
        {
            await inbox.LeaderAsync(TimeSpan.FromSeconds(60), not: leader);
            (await PublishUntilAcknowledgedAsync(publisher, "cluster/leader/after", "after the kill"))
                .Should().Be(MqttClientPublishReasonCode.Success, cluster.Describe());
            var acknowledged = Stopwatch.StartNew();
            var arrived = await WaitForAsync(subscriber, m => m.Topic == "cluster/leader/after", 1, TimeSpan.FromSeconds(5));
            if (!arrived)
            {
                // Without the fix: "pending 1, waiting pulls 0" here (the stored message, and nobody asking for it).
                output.WriteLine($"not there 5 s after the acknowledgement: {InboxProbe.Describe(await inbox.InfoAsync())}");
                arrived = await WaitForAsync(subscriber, m => m.Topic == "cluster/leader/after", 1, TimeSpan.FromSeconds(55));
            }
            var state = InboxProbe.Describe(await inbox.InfoAsync());
            output.WriteLine($"nats-{leader} (consumer leader) killed; acknowledged message reached A after {acknowledged.ElapsedMilliseconds} ms; {state}");

            arrived.Should().BeTrue($"an acknowledged message is a promise\n{state}\n{cluster.Describe()}");
            acknowledged.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10),
                $"A must ask the new consumer leader for messages within seconds, not after the 30 s heartbeat timeout\n{state}");
        }
        finally
        {
            cluster.Nats.Restart(leader);
        }
    }

    [Fact]
    public async Task NatsServerKilled_DuringQos1Flow_NoAcknowledgedMessageLostAndRetainedResynchronised()
    {
        const int count = 300;
        var topic = "cluster/outage/seq";
        await using var subscriber = await cluster.ConnectAsync(cluster.B, "outage-sub-b");
        await subscriber.SubscribeAsync("cluster/outage/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await cluster.ConnectAsync(cluster.A, "outage-pub-a", "sensor-002");
        await WaitForRouteAsync(publisher, "cluster/outage/probe");
        var reconnectsBefore = cluster.C.Process.Output.Count(l => l.Contains("[7002]", StringComparison.Ordinal));

        // nats-2 (node C's server) dies a little into the flow; the streams keep a quorum of two.
        var acknowledged = new List<int>();
        for (var i = 0; i < count; i++)
        {
            if (i == 50)
            {
                cluster.Nats.Kill(2);
                (await PublishUntilAcknowledgedAsync(publisher, "cluster/outage/state", "during", retain: true))
                    .Should().Be(MqttClientPublishReasonCode.Success, cluster.Describe());
            }
            var result = await publisher.PublishAsync(topic, i.ToString(System.Globalization.CultureInfo.InvariantCulture), MqttQualityOfServiceLevel.AtLeastOnce);
            if (result.ReasonCode == MqttClientPublishReasonCode.Success)
            {
                acknowledged.Add(i);
            }
        }
        cluster.Nats.Restart(2);

        output.WriteLine($"{acknowledged.Count} of {count} acknowledged across the outage");
        acknowledged.Count.Should().BeGreaterThan(count / 2, cluster.Describe());
        (await WaitForAsync(subscriber, m => m.Topic == topic, acknowledged.Count, TimeSpan.FromSeconds(60))).Should().BeTrue(cluster.Describe());
        var arrived = subscriber.Received.Where(m => m.Topic == topic)
            .Select(m => int.Parse(m.ConvertPayloadToString(), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        arrived.Should().Contain(acknowledged, "an acknowledged message is a promise");
        arrived.Should().BeInAscendingOrder();

        // C was cut off from its server: once back it re-reads the retained bucket and serves what changed meanwhile.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (cluster.C.Process.Output.Count(l => l.Contains("[7002]", StringComparison.Ordinal)) <= reconnectsBefore)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "node C should reconnect to NATS\n" + cluster.Describe());
            await Task.Delay(100);
        }
        (await PollRetainedAsync(cluster, cluster.C, "cluster/outage/state", expected: "during")).Should().BeTrue(cluster.Describe());

        // Back to full service before the next test: a publisher on C reaches a subscriber on A again.
        var recovery = Stopwatch.StartNew();
        await using var probeSubscriber = await cluster.ConnectAsync(cluster.A, "outage-after-sub-a");
        await probeSubscriber.SubscribeAsync("cluster/outage-after/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var probePublisher = await cluster.ConnectAsync(cluster.C, "outage-after-pub-c", "sensor-002");
        await WaitForRouteAsync(probePublisher, "cluster/outage-after/probe");
        (await WaitForAsync(probeSubscriber, m => m.Topic == "cluster/outage-after/probe", 1)).Should().BeTrue(
            "an acknowledged probe reaches A\n" + cluster.Describe());
        cluster.C.Process.Output.Should().NotContain(l => l.Contains("[7003]", StringComparison.Ordinal)
            && (l.Contains("node A ", StringComparison.Ordinal) || l.Contains("node B ", StringComparison.Ordinal)),
            "a node cut off from NATS must not take the others' silence for their death");
        output.WriteLine($"C forwards again {recovery.ElapsedMilliseconds} ms after the restart was checked\n"
            + string.Join("\n", cluster.C.Process.Output.Where(l => l.Contains("[70", StringComparison.Ordinal)).TakeLast(20)));
    }

    [Fact]
    public async Task KillNode_ClientWithWill_WillPublishedOnceOnEverySurvivor()
    {
        // A fourth node, so that the other tests keep their three: it plays B's part of the issue's test.
        var doomed = await cluster.StartNodeAsync("D", 1);
        await using var onA = await cluster.ConnectAsync(cluster.A, "will-watch-a");
        await onA.SubscribeAsync("cluster/will/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var onC = await cluster.ConnectAsync(cluster.C, "will-watch-c", "sensor-002");
        await onC.SubscribeAsync("cluster/will/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await cluster.ConnectAsync(doomed, "will-device-d", "gw-berlin", o => o
            .WithWillTopic("cluster/will/gw-berlin").WithWillPayload(Encoding.UTF8.GetBytes("gone"))
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        await WaitForRouteAsync(device, "cluster/will/probe");
        await WaitForWillRegisteredAsync("D.");

        var killed = Stopwatch.StartNew();
        await doomed.Process.KillAsync();
        var seenOnA = await WaitForAsync(onA, m => m.Topic == "cluster/will/gw-berlin", 1, TimeSpan.FromSeconds(60));
        var seenOnC = await WaitForAsync(onC, m => m.Topic == "cluster/will/gw-berlin", 1, TimeSpan.FromSeconds(60));
        output.WriteLine($"will on the survivors {killed.ElapsedMilliseconds} ms after kill -9 (node timeout {ClusterFixture.NodeTimeoutSeconds} s)");
        device.Client.Dispose();

        seenOnA.Should().BeTrue(cluster.Describe());
        seenOnC.Should().BeTrue(cluster.Describe());
        await Task.Delay(1500);
        onA.Received.Count(m => m.Topic == "cluster/will/gw-berlin").Should().Be(1, "exactly one survivor publishes the will");
        onC.Received.Count(m => m.Topic == "cluster/will/gw-berlin").Should().Be(1);
        onA.Received.Single(m => m.Topic == "cluster/will/gw-berlin").ConvertPayloadToString().Should().Be("gone");
    }

    [Fact]
    public async Task KillNode_PersistentSessionOnIt_ResumesOnAnotherNodeWithItsMessages()
    {
        var doomed = await cluster.StartNodeAsync("E", 2);
        Action<MqttClientOptionsBuilder> persistent = o => o.WithCleanStart(false).WithSessionExpiryInterval(600);
        await using var publisher = await cluster.ConnectAsync(cluster.C, "dead-pub-c", "sensor-002");
        await using (var onE = await cluster.ConnectAsync(doomed, "dead-session", configure: persistent))
        {
            await onE.SubscribeAsync("cluster/dead/#", MqttQualityOfServiceLevel.AtLeastOnce);
            await WaitForRouteAsync(publisher, "cluster/dead/probe");
            (await WaitForAsync(onE, m => m.Topic == "cluster/dead/probe", 1)).Should().BeTrue(cluster.Describe());
        }
        for (var i = 0; i < 5; i++)
        {
            (await PublishUntilAcknowledgedAsync(publisher, "cluster/dead/m" + i.ToString(CultureInfo.InvariantCulture), "queued on E"))
                .Should().Be(MqttClientPublishReasonCode.Success);
        }
        await Task.Delay(1000); // E takes them from its inbox into the offline session (and its replica)

        await doomed.Process.KillAsync();
        await Task.Delay(TimeSpan.FromSeconds(int.Parse(ClusterFixture.NodeTimeoutSeconds, CultureInfo.InvariantCulture) + 2));
        var clock = Stopwatch.StartNew();
        await using var onB = await cluster.ConnectAsync(cluster.B, "dead-session", configure: persistent);
        output.WriteLine($"session of the killed node E resumed on B: CONNACK after {clock.ElapsedMilliseconds} ms, session present {onB.ConnectResult?.IsSessionPresent}");

        onB.ConnectResult!.IsSessionPresent.Should().BeTrue("the session of a dead node stays resumable elsewhere");
        (await WaitForAsync(onB, m => m.Topic.StartsWith("cluster/dead/m", StringComparison.Ordinal), 5)).Should().BeTrue(cluster.Describe());
        (await PublishUntilAcknowledgedAsync(publisher, "cluster/dead/after", "after")).Should().Be(MqttClientPublishReasonCode.Success);
        (await WaitForAsync(onB, m => m.Topic == "cluster/dead/after", 1)).Should().BeTrue("its subscription came along");
    }

    [Fact]
    public async Task KillNode_OfflineSessionWithDelayedWill_PublishedOnceBySurvivorWhenDue()
    {
        var doomed = await cluster.StartNodeAsync("F", 0);
        await using var watcher = await cluster.ConnectAsync(cluster.A, "dwill-watch-a", "sensor-002");
        await watcher.SubscribeAsync("cluster/dwill/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await cluster.ConnectAsync(doomed, "dwill-device", "gw-berlin", o => o
            .WithCleanStart(false).WithSessionExpiryInterval(600)
            .WithWillTopic("cluster/dwill/gw-berlin").WithWillPayload(Encoding.UTF8.GetBytes("gone for good"))
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithWillDelayInterval(6));
        await WaitForRouteAsync(device, "cluster/dwill/probe");
        // The device leaves asking for its will (DISCONNECT 0x04): due in 6 s, held by F's offline session meanwhile.
        await device.Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder()
            .WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());
        device.Client.Dispose();
        await WaitForWillRegisteredAsync("F.");

        var killed = Stopwatch.StartNew();
        await doomed.Process.KillAsync();
        var published = await WaitForAsync(watcher, m => m.Topic == "cluster/dwill/gw-berlin", 1, TimeSpan.FromSeconds(60));
        output.WriteLine($"delayed will (6 s) of the killed node's offline session published {killed.ElapsedMilliseconds} ms after kill -9");

        published.Should().BeTrue(cluster.Describe());
        killed.Elapsed.Should().BeGreaterThan(TimeSpan.FromSeconds(4), "not before its delay (6 s from the DISCONNECT) has passed");
        await Task.Delay(1500);
        watcher.Received.Count(m => m.Topic == "cluster/dwill/gw-berlin").Should().Be(1, "exactly one survivor publishes it");
    }

    /// <summary>Reads the wills bucket over NATS until a will of the node (key prefix) is there.</summary>
    private async Task WaitForWillRegisteredAsync(string keyPrefix)
    {
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(0) });
        var wills = await nats.CreateKeyValueStoreContext().GetStoreAsync("omni_wills");
        var deadline = DateTime.UtcNow + Spread;
        while (true)
        {
            await foreach (var key in wills.GetKeysAsync())
            {
                if (key.StartsWith(keyPrefix, StringComparison.Ordinal))
                {
                    return;
                }
            }
            DateTime.UtcNow.Should().BeBefore(deadline, "the will should be registered in the wills bucket");
            await Task.Delay(100);
        }
    }
}
