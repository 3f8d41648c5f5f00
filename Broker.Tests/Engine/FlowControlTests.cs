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

    [Fact]
    public async Task HeldPublisher_PingReqAndPubAckBehindHeldPublish_HandledWhileHeld()
    {
        await using var server = await EngineServer.StartAsync(o =>
        {
            o.MaxQueuedMessagesPerSession = 10;
            o.SlowSubscriberTimeout = TimeSpan.FromMinutes(2);
        });
        await using var stalled = await server.ConnectAsync("stalled", properties: new MqttProperties { ReceiveMaximum = 2 });
        await stalled.SubscribeAsync("s/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub", properties: new MqttProperties { ReceiveMaximum = 1 });
        await publisher.SubscribeAsync("p/#", MqttQos.AtLeastOnce);
        await using var other = await server.ConnectAsync("other");

        // 2 in flight + 10 queued fill the stalled subscriber; the 13th PUBLISH holds the publisher back.
        for (ushort id = 1; id <= 13; id++)
        {
            await publisher.SendAsync(RawMqttClient.Publish($"s/{id}", $"m{id}", MqttQos.AtLeastOnce, packetId: id));
        }
        await WaitUntilAsync(() => server.Broker.QueuedMessageCount >= 8, "the stalled subscriber's queue fills", TimeSpan.FromSeconds(30));
        await Task.Delay(200);

        // Held back, the connection still reads PINGREQ and the PUBACKs of its own deliveries behind the held PUBLISH.
        (await other.PublishAsync("p/1", "to-pub", MqttQos.AtLeastOnce))!.ReasonCode.Should().Be(MqttReasonCode.Success);
        var first = await publisher.PingAsync();
        // A PINGRESP may be written ahead of a PUBLISH taken in the same batch (control packets go first).
        var delivery = first.OfType<PublishPacket>().SingleOrDefault() ?? await publisher.ExpectPublishAsync(TimeSpan.FromSeconds(10));
        delivery.Topic.Should().Be("p/1");
        await publisher.SendAsync(new PubAckPacket(MqttPacketType.PubAck) { PacketId = delivery.PacketId });
        (await other.PublishAsync("p/2", "to-pub", MqttQos.AtLeastOnce))!.ReasonCode.Should().Be(MqttReasonCode.Success);
        var second = await publisher.PingAsync();

        // Receive Maximum 1: p/2 leaves only once the PUBACK of p/1 was read, behind the held PUBLISH.
        var next = second.OfType<PublishPacket>().SingleOrDefault() ?? await publisher.ExpectPublishAsync(TimeSpan.FromSeconds(10));
        next.Topic.Should().Be("p/2");
        var acked = first.Concat(second).OfType<PubAckPacket>().Select(a => (int)a.PacketId).ToList();
        acked.Should().Equal(Enumerable.Range(1, acked.Count), "acknowledged in order up to the held PUBLISH");
        acked.Count.Should().BeLessThan(13, "the held PUBLISH and those behind it stay unacknowledged while held back");
    }
}
