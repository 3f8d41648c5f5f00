using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using OmniBroker.Tests.EndToEnd;

namespace OmniBroker.Tests.Cluster;

/// <summary>Bounded waits shared by the cluster tests (generous: the machine may be loaded).</summary>
internal static class ClusterProbes
{
    public static readonly TimeSpan Spread = TimeSpan.FromSeconds(45);

    /// <summary>Publishes QoS 1 probes until the PUBACK says some subscriber (on any node) matched.</summary>
    public static async Task WaitForRouteAsync(MqttNetClient publisher, string probeTopic)
    {
        var deadline = DateTime.UtcNow + Spread;
        while ((await publisher.PublishAsync(probeTopic, "probe", MqttQualityOfServiceLevel.AtLeastOnce)).ReasonCode != MqttClientPublishReasonCode.Success)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the subscription should reach the publisher's node");
            await Task.Delay(100);
        }
    }

    /// <summary>Publishes a QoS 1 message until it is acknowledged (not while a stream elects a leader: 0x97 after the
    /// forward timeout), as a device would; at most <paramref name="attempts"/> times.</summary>
    public static async Task<MqttClientPublishReasonCode> PublishUntilAcknowledgedAsync(MqttNetClient publisher, string topic, string payload,
        bool retain = false, int attempts = 5)
    {
        var result = MqttClientPublishReasonCode.UnspecifiedError;
        for (var attempt = 0; attempt < attempts && result != MqttClientPublishReasonCode.Success; attempt++)
        {
            result = (await publisher.PublishAsync(topic, payload, MqttQualityOfServiceLevel.AtLeastOnce, retain)).ReasonCode;
        }
        return result;
    }

    public static async Task<bool> WaitForAsync(MqttNetClient client, Func<MqttApplicationMessage, bool> match, int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Spread);
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
    public static async Task<bool> PollRetainedAsync(ClusterFixture cluster, ClusterHost node, string topic, string? expected)
    {
        var deadline = DateTime.UtcNow + Spread;
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
}
