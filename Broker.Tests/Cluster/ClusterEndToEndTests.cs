using System.Diagnostics;
using System.Text;
using FluentAssertions;
using Xunit;
using MQTTnet;
using MQTTnet.Protocol;
using NATS.Client.Core;
using NATS.Net;
using OmniBroker.Tests.EndToEnd;
using static OmniBroker.Tests.Cluster.ClusterProbes;
using Xunit.Abstractions;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// Three OmniBroker processes clustered on three nats-server processes (<see cref="ClusterFixture"/>), driven by
/// MQTTnet over mutual TLS. A publisher learns that another node has a matching subscriber from its PUBACK (5.0:
/// Success rather than 0x10 No matching subscribers), which is how the tests wait for routes to spread.
/// </summary>
[Collection(ClusterFixture.Collection)]
public sealed partial class ClusterEndToEndTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
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
        (await PollRetainedAsync(cluster, cluster.C, "cluster/retained/state", expected: "on")).Should().BeTrue("a new subscriber on C gets B's retained message\n" + cluster.Describe());

        await using (var clearer = await cluster.ConnectAsync(cluster.A, "retain-clear-a"))
        {
            (await clearer.PublishAsync("cluster/retained/state", "", MqttQualityOfServiceLevel.AtLeastOnce, retain: true)).IsSuccess.Should().BeTrue();
        }
        (await PollRetainedAsync(cluster, cluster.C, "cluster/retained/state", expected: null)).Should().BeTrue("cleared on A, gone on C");
        (await PollRetainedAsync(cluster, cluster.B, "cluster/retained/state", expected: null)).Should().BeTrue("cleared on A, gone on B");
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
        Value(metrics, "omnibroker_cluster_inbox_lag").Should().BeGreaterThanOrEqualTo(-1, "A's inbox lag (-1 before the first look)");
        metrics.Should().Contain("omnibroker_cluster_inbox_restarts_total");
        metrics.Should().Contain("omnibroker_cluster_forwarded_total").And.Contain("omnibroker_cluster_forward_failures_total");
    }

    [Fact]
    public async Task Takeover_SameClientIdConnectsOnOtherNode_OldConnectionGetsSessionTakenOver()
    {
        var persistent = (Action<MqttClientOptionsBuilder>)(o => o.WithCleanStart(false).WithSessionExpiryInterval(300));
        await using var first = await cluster.ConnectAsync(cluster.A, "owned-1", configure: persistent);
        var firstGone = Disconnection(first);
        // A's claim is in the bucket before B's connect (else B's could be the older claim).
        await WaitForClaimAsync("A", "owned-1");

        var moved = Stopwatch.StartNew();
        await using var second = await cluster.ConnectAsync(cluster.B, "owned-1", configure: persistent);
        var reason = await firstGone.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"old connection on A closed {moved.ElapsedMilliseconds} ms after the connect on B ({reason})");

        reason.Should().Be(MqttClientDisconnectReason.SessionTakenOver);
        await Task.Delay(2000);
        second.Client.IsConnected.Should().BeTrue("the later connection keeps the client id");
    }

    [Fact]
    public async Task Takeover_SimultaneousConnectsOnTwoNodes_ExactlyOneLeft()
    {
        for (var round = 0; round < 3; round++)
        {
            var clientId = $"twin-{round}";
            var connects = await Task.WhenAll(cluster.ConnectAsync(cluster.A, clientId), cluster.ConnectAsync(cluster.C, clientId));
            try
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (connects.Count(c => c.Client.IsConnected) > 1 && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100);
                }
                await Task.Delay(2000);
                connects.Count(c => c.Client.IsConnected).Should().Be(1, $"round {round}: one connection per client id cluster-wide\n{cluster.Describe()}");
            }
            finally
            {
                foreach (var client in connects)
                {
                    await client.DisposeAsync();
                }
            }
        }
    }

    /// <summary>Reads the clients bucket over NATS until <paramref name="nodeId"/> holds <paramref name="clientId"/>.</summary>
    private async Task WaitForClaimAsync(string nodeId, string clientId)
    {
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(0) });
        var clients = await nats.CreateKeyValueStoreContext().GetStoreAsync("omni_clients");
        var deadline = DateTime.UtcNow + Spread;
        while (true)
        {
            await foreach (var key in clients.GetKeysAsync())
            {
                var entry = await clients.GetEntryAsync<byte[]>(key);
                if (entry.Value is { } value && Encoding.UTF8.GetString(value) == nodeId + "\n" + clientId)
                {
                    return;
                }
            }
            DateTime.UtcNow.Should().BeBefore(deadline, $"{nodeId} should claim {clientId} in omni_clients");
            await Task.Delay(100);
        }
    }

    private static Task<MqttClientDisconnectReason> Disconnection(MqttNetClient client)
    {
        var gone = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Client.DisconnectedAsync += e =>
        {
            gone.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };
        return gone.Task;
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
}
