using System.Diagnostics;
using System.Text;
using FluentAssertions;
using Xunit;
using MQTTnet;
using MQTTnet.Protocol;
using NATS.Client.Core;
using NATS.Net;
using OmniBroker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// Three OmniBroker processes clustered on three nats-server processes (<see cref="ClusterFixture"/>), driven by
/// MQTTnet over mutual TLS. A publisher learns that another node has a matching subscriber from its PUBACK (5.0:
/// Success rather than 0x10 No matching subscribers), which is how the tests wait for routes to spread.
/// </summary>
public sealed class ClusterEndToEndTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private static readonly TimeSpan s_spread = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Publish_SubscriberOnOtherNode_DeliveredOnceAndNothingUnsubscribed()
    {
        await using var subscriber = await cluster.ConnectAsync(cluster.A, "route-sub-a");
        await subscriber.SubscribeAsync("cluster/route/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await cluster.ConnectAsync(cluster.C, "route-pub-c", "sensor-002");
        await WaitForRouteAsync(publisher, "cluster/route/probe");

        // With 5.0 properties, which cross the nodes unaltered.
        var routed = await publisher.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("cluster/route/m").WithPayload("hello from C")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType("text/plain").WithResponseTopic("cluster/route/reply")
            .WithCorrelationData([1, 2, 3]).WithUserProperty("origin", System.Text.Encoding.UTF8.GetBytes("node C").AsMemory()).WithMessageExpiryInterval(600).Build());
        var unrouted = await publisher.PublishAsync("cluster/elsewhere/m", "nobody", MqttQualityOfServiceLevel.AtLeastOnce);

        routed.ReasonCode.Should().Be(MqttClientPublishReasonCode.Success);
        unrouted.ReasonCode.Should().Be(MqttClientPublishReasonCode.NoMatchingSubscribers, "no node subscribes to it: it is not forwarded");
        (await WaitForAsync(subscriber, m => m.Topic == "cluster/route/m", 1)).Should().BeTrue(cluster.Describe());
        await Task.Delay(1000);
        subscriber.Received.Count(m => m.Topic == "cluster/route/m").Should().Be(1);
        var delivered = subscriber.Received.Single(m => m.Topic == "cluster/route/m");
        delivered.ConvertPayloadToString().Should().Be("hello from C");
        delivered.ContentType.Should().Be("text/plain");
        delivered.ResponseTopic.Should().Be("cluster/route/reply");
        delivered.CorrelationData.Should().Equal(1, 2, 3);
        delivered.UserProperties.Select(p => p.Name + "=" + Encoding.UTF8.GetString(p.ValueBuffer.ToArray())).Should().Equal("origin=node C");
        delivered.MessageExpiryInterval.Should().BeInRange(1, 600);
        subscriber.Received.Should().OnlyContain(m => m.Topic.StartsWith("cluster/route/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Qos1Flow_2000MessagesFromOnePublisherOnC_ArriveAtAInOrder()
    {
        const int count = 2000;
        var crossNode = await RunFlowAsync(cluster.C, "order-c", count);
        var oneNode = await RunFlowAsync(cluster.A, "order-a", count);
        output.WriteLine($"QoS 1, one publisher awaiting each PUBACK: across nodes (C to A) {crossNode:F0} msg/s, one node (A to A) {oneNode:F0} msg/s, ratio {crossNode / oneNode:F2}");
    }

    [Fact]
    public async Task Qos1Throughput_TenPublishersOnC_AllArriveAtAInOrderPerPublisher()
    {
        var crossNode = await RunParallelFlowsAsync(cluster.C, "par-c", publishers: 10, perPublisher: 200);
        var oneNode = await RunParallelFlowsAsync(cluster.A, "par-a", publishers: 10, perPublisher: 200);
        output.WriteLine($"QoS 1, 10 publishers x 200 awaiting each PUBACK: across nodes (C to A) {crossNode:F0} msg/s, one node (A to A) {oneNode:F0} msg/s, ratio {crossNode / oneNode:F2}, 0 lost");
    }

    [Fact]
    public async Task Retained_SetOnB_SeenOnCAndClearedFromA()
    {
        await using (var setter = await cluster.ConnectAsync(cluster.B, "retain-set-b"))
        {
            (await setter.PublishAsync("cluster/retained/state", "on", MqttQualityOfServiceLevel.AtLeastOnce, retain: true)).IsSuccess.Should().BeTrue();
        }
        (await PollRetainedAsync(cluster.C, "cluster/retained/state", expected: "on")).Should().BeTrue("a new subscriber on C gets B's retained message\n" + cluster.Describe());

        await using (var clearer = await cluster.ConnectAsync(cluster.A, "retain-clear-a"))
        {
            (await clearer.PublishAsync("cluster/retained/state", "", MqttQualityOfServiceLevel.AtLeastOnce, retain: true)).IsSuccess.Should().BeTrue();
        }
        (await PollRetainedAsync(cluster.C, "cluster/retained/state", expected: null)).Should().BeTrue("cleared on A, gone on C");
        (await PollRetainedAsync(cluster.B, "cluster/retained/state", expected: null)).Should().BeTrue("cleared on A, gone on B");
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
                // Not acknowledged while a stream elects a new leader (0x97 after the forward timeout): sent again, as a device would.
                var retainedResult = MqttClientPublishReasonCode.UnspecifiedError;
                for (var attempt = 0; attempt < 5 && retainedResult != MqttClientPublishReasonCode.Success; attempt++)
                {
                    retainedResult = (await publisher.PublishAsync("cluster/outage/state", "during", MqttQualityOfServiceLevel.AtLeastOnce, retain: true)).ReasonCode;
                }
                retainedResult.Should().Be(MqttClientPublishReasonCode.Success, cluster.Describe());
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
        (await PollRetainedAsync(cluster.C, "cluster/outage/state", expected: "during")).Should().BeTrue(cluster.Describe());

        // Back to full service before the next test: a publisher on C reaches a subscriber on A again.
        var recovery = Stopwatch.StartNew();
        await using var probeSubscriber = await cluster.ConnectAsync(cluster.A, "outage-after-sub-a");
        await probeSubscriber.SubscribeAsync("cluster/outage-after/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var probePublisher = await cluster.ConnectAsync(cluster.C, "outage-after-pub-c", "sensor-002");
        await WaitForRouteAsync(probePublisher, "cluster/outage-after/probe");
        cluster.C.Process.Output.Should().NotContain(l => l.Contains("[7003]", StringComparison.Ordinal)
            && (l.Contains("node A ", StringComparison.Ordinal) || l.Contains("node B ", StringComparison.Ordinal)),
            "a node cut off from NATS must not take the others' silence for their death");
        output.WriteLine($"C forwards again {recovery.ElapsedMilliseconds} ms after the restart was checked\n"
            + string.Join("\n", cluster.C.Process.Output.Where(l => l.Contains("[70", StringComparison.Ordinal)).TakeLast(20)));
    }

    [Fact]
    public async Task Metrics_AfterCrossNodeDelivery_ClusterSeriesExported()
    {
        await using var subscriber = await cluster.ConnectAsync(cluster.A, "metrics-sub-a");
        await subscriber.SubscribeAsync("cluster/metrics/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await cluster.ConnectAsync(cluster.C, "metrics-pub-c", "sensor-002");
        await WaitForRouteAsync(publisher, "cluster/metrics/probe");
        (await WaitForAsync(subscriber, m => m.Topic == "cluster/metrics/probe", 1)).Should().BeTrue();

        var line = await cluster.A.Process.WaitForLineAsync(l => l.Contains("[6001]", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var endPoint = System.Text.RegularExpressions.Regex.Match(line, @"listening on (?:https?://)?(\S+)").Groups[1].Value;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await http.GetStringAsync($"http://{endPoint}/metrics");

        metrics.Should().Contain("omnibroker_cluster_nats_connected 1");
        Value(metrics, "omnibroker_cluster_nodes_alive").Should().BeGreaterThanOrEqualTo(2, "B and C");
        Value(metrics, "omnibroker_cluster_received_total").Should().BeGreaterThan(0, "A received C's probe");
        metrics.Should().Contain("omnibroker_cluster_forwarded_total").And.Contain("omnibroker_cluster_forward_failures_total");
    }

    private static double Value(string metrics, string series)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal) || l.StartsWith(series + "{", StringComparison.Ordinal));
        line.Should().NotBeNull($"{series} is exported");
        var text = line!;
        return double.Parse(text[(text.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>One subscriber on A, one publisher on <paramref name="publisherNode"/>: <paramref name="count"/> QoS 1
    /// messages, each PUBACK awaited; all must arrive in order. Returns messages per second end to end.</summary>
    private async Task<double> RunFlowAsync(ClusterHost publisherNode, string prefix, int count)
    {
        var topic = "cluster/" + prefix + "/seq";
        await using var subscriber = await cluster.ConnectAsync(cluster.A, prefix + "-sub");
        await subscriber.SubscribeAsync("cluster/" + prefix + "/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await cluster.ConnectAsync(publisherNode, prefix + "-pub", "sensor-002");
        await WaitForRouteAsync(publisher, "cluster/" + prefix + "/probe");

        var watch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var result = await publisher.PublishAsync(topic, i.ToString(System.Globalization.CultureInfo.InvariantCulture), MqttQualityOfServiceLevel.AtLeastOnce);
            result.ReasonCode.Should().Be(MqttClientPublishReasonCode.Success);
        }
        (await WaitForAsync(subscriber, m => m.Topic == topic, count, TimeSpan.FromSeconds(120))).Should().BeTrue(
            $"{subscriber.Received.Count(m => m.Topic == topic)} of {count} arrived\n{cluster.Describe()}");
        var rate = count / watch.Elapsed.TotalSeconds;
        var sequence = subscriber.Received.Where(m => m.Topic == topic).Select(m => int.Parse(m.ConvertPayloadToString(),
            System.Globalization.CultureInfo.InvariantCulture)).ToList();
        sequence.Should().Equal(Enumerable.Range(0, count), "in order, once each");
        return rate;
    }

    /// <summary><paramref name="publishers"/> publishers on <paramref name="publisherNode"/> at once, one subscriber on A:
    /// every message must arrive, in order per publisher. Returns messages per second end to end.</summary>
    private async Task<double> RunParallelFlowsAsync(ClusterHost publisherNode, string prefix, int publishers, int perPublisher)
    {
        await using var subscriber = await cluster.ConnectAsync(cluster.A, prefix + "-sub");
        await subscriber.SubscribeAsync("cluster/" + prefix + "/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var clients = new List<MqttNetClient>();
        try
        {
            for (var p = 0; p < publishers; p++)
            {
                clients.Add(await cluster.ConnectAsync(publisherNode, $"{prefix}-pub-{p}", "sensor-002"));
            }
            await WaitForRouteAsync(clients[0], "cluster/" + prefix + "/probe");
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(clients.Select(async (client, p) =>
            {
                for (var i = 0; i < perPublisher; i++)
                {
                    var result = await client.PublishAsync($"cluster/{prefix}/{p}", i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        MqttQualityOfServiceLevel.AtLeastOnce);
                    result.ReasonCode.Should().Be(MqttClientPublishReasonCode.Success);
                }
            }));
            var total = publishers * perPublisher;
            (await WaitForAsync(subscriber, m => !m.Topic.EndsWith("/probe", StringComparison.Ordinal), total, TimeSpan.FromSeconds(120)))
                .Should().BeTrue(cluster.Describe());
            var rate = total / watch.Elapsed.TotalSeconds;
            for (var p = 0; p < publishers; p++)
            {
                var topic = $"cluster/{prefix}/{p}";
                subscriber.Received.Where(m => m.Topic == topic)
                    .Select(m => int.Parse(m.ConvertPayloadToString(), System.Globalization.CultureInfo.InvariantCulture))
                    .Should().Equal(Enumerable.Range(0, perPublisher), "in order per publisher, once each");
            }
            return rate;
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    /// <summary>Publishes QoS 1 probes until the PUBACK says some subscriber (on any node) matched.</summary>
    private static async Task WaitForRouteAsync(MqttNetClient publisher, string probeTopic)
    {
        var deadline = DateTime.UtcNow + s_spread;
        while ((await publisher.PublishAsync(probeTopic, "probe", MqttQualityOfServiceLevel.AtLeastOnce)).ReasonCode != MqttClientPublishReasonCode.Success)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the subscription should reach the publisher's node");
            await Task.Delay(100);
        }
    }

    private static async Task<bool> WaitForAsync(MqttNetClient client, Func<MqttApplicationMessage, bool> match, int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? s_spread);
        while (client.Received.Count(match) < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            await Task.Delay(50);
        }
        return true;
    }

    /// <summary>New subscribers on <paramref name="node"/> until one gets <paramref name="expected"/> as the retained
    /// message of <paramref name="topic"/> (null: none within a second).</summary>
    private async Task<bool> PollRetainedAsync(ClusterHost node, string topic, string? expected)
    {
        var deadline = DateTime.UtcNow + s_spread;
        for (var attempt = 0; DateTime.UtcNow < deadline; attempt++)
        {
            await using var subscriber = await cluster.ConnectAsync(node, $"retain-probe-{node.NodeId}-{attempt}", "backend-telemetry");
            await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
            var got = await WaitForAsync(subscriber, m => m.Topic == topic, 1, TimeSpan.FromSeconds(1));
            if (expected is null ? !got : got && subscriber.Received.First(m => m.Topic == topic).ConvertPayloadToString() == expected)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Reads the wills bucket over NATS until a will of the node (key prefix) is there.</summary>
    private async Task WaitForWillRegisteredAsync(string keyPrefix)
    {
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(0) });
        var wills = await nats.CreateKeyValueStoreContext().GetStoreAsync("omni_wills");
        var deadline = DateTime.UtcNow + s_spread;
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
