using FluentAssertions;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Backpressure and the slow-subscriber policies, with raw clients that stop reading at will.</summary>
public sealed class FlowControlTests
{
    [Theory]
    [InlineData(SlowSubscriberPolicy.Disconnect)]
    [InlineData(SlowSubscriberPolicy.DropQos0)]
    public async Task StalledSubscriber_AfterTimeout_DeclaredSlowAndPublisherReleased(SlowSubscriberPolicy policy)
    {
        await using var server = await EngineServer.StartAsync(o =>
        {
            o.MaxQueuedMessagesPerSession = 10;
            o.SlowSubscriberTimeout = TimeSpan.FromSeconds(1);
            o.SlowSubscriberPolicy = policy;
        });
        await using var stalled = await server.ConnectAsync("stalled", properties: new MqttProperties { ReceiveMaximum = 2 });
        await stalled.SubscribeAsync("s/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        // 2 in flight + 10 queued fill the stalled subscriber; the 12th message is held until it is declared slow.
        for (var i = 0; i < 14; i++)
        {
            var ack = await publisher.PublishAsync($"s/{i}", $"m{i}", MqttQos.AtLeastOnce);
            ack!.ReasonCode.Should().BeOneOf(MqttReasonCode.Success, MqttReasonCode.QuotaExceeded, MqttReasonCode.NoMatchingSubscribers);
        }

        var slow = server.Logs.WithEventId(1208).Should().ContainSingle().Which;
        slow.Value("ClientId").Should().Be("stalled");
        if (policy == SlowSubscriberPolicy.Disconnect)
        {
            await WaitUntilAsync(() => stalled.IsClosed || server.Broker.ConnectedClientCount == 1, "the slow subscriber is disconnected");
        }
        else
        {
            stalled.IsClosed.Should().BeFalse();
        }
    }
}
