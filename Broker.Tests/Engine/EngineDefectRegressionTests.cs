using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Regression tests for defects 1, 2 and 9 of issue 9, through the real connection handler and raw bytes.</summary>
public sealed class EngineDefectRegressionTests
{
    [Theory]
    [InlineData("user property")]
    [InlineData("content type")]
    [InlineData("message expiry")]
    [InlineData("topic alias")]
    public async Task ForwardedPublish_PublisherSentNoCorrelationData_HasNoCorrelationData(string property)
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("corr/#");
        await using var publisher = await server.ConnectAsync("pub");
        var properties = property switch
        {
            "user property" => new MqttProperties { UserProperties = [new("k", "v")] },
            "content type" => new MqttProperties { ContentType = "text/plain" },
            "message expiry" => new MqttProperties { MessageExpiryInterval = 600 },
            _ => new MqttProperties { TopicAlias = 1 },
        };

        await publisher.PublishAsync("corr/1", "x", properties: properties);

        var received = await subscriber.ExpectPublishAsync();
        // The codec reads a present 0x09 property (even "09 00 00") as a non-null value.
        received.Properties?.CorrelationData.Should().BeNull("the publisher sent no Correlation Data");
    }

    [Fact]
    public async Task ForwardedPublish_PublisherSentCorrelationData_KeepsIt()
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("corr/#");
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("corr/1", "x", properties: new MqttProperties { CorrelationData = new byte[] { 7 } });

        (await subscriber.ExpectPublishAsync()).Properties!.CorrelationData!.Value.ToArray().Should().Equal(7);
    }

    [Fact]
    public async Task InboundPublish_WithSubscriptionIdentifier_DisconnectProtocolError()
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("a/#", MqttQos.AtLeastOnce);
        await using var client = await server.ConnectAsync("hostile");

        // PUBLISH QoS 1 "a/b", packet id 1, properties: Subscription Identifier (0x0B) 5, payload "x" [MQTT-3.3.4-6].
        await client.SendRawAsync(new byte[] { 0x32, 0x0B, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', 0x00, 0x01, 0x02, 0x0B, 0x05, (byte)'x' });

        var beforeClose = await client.WaitForCloseAsync(TimeSpan.FromSeconds(10));
        beforeClose.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
            .Which.ReasonCode.Should().Be(MqttReasonCode.ProtocolError);
        await Assert.ThrowsAsync<TimeoutException>(() => subscriber.ExpectPublishAsync(TimeSpan.FromMilliseconds(300)));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task IncompletePacket_KeepAliveZero_ConnectionClosedAfterTimeout(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync(o => o.IncompletePacketTimeout = TimeSpan.FromSeconds(1));
        await using var client = await server.ConnectAsync("stall", version, keepAlive: 0);

        // PUBLISH announcing 60,000 bytes (Remaining Length E0 D4 03), then only its first 1,000 bytes.
        var partial = new byte[1004];
        partial[0] = 0x30;
        partial[1] = 0xE0;
        partial[2] = 0xD4;
        partial[3] = 0x03;
        await client.SendRawAsync(partial);

        var started = DateTime.UtcNow;
        await client.WaitForCloseAsync(TimeSpan.FromSeconds(20));
        (DateTime.UtcNow - started).Should().BeGreaterThan(TimeSpan.FromMilliseconds(500));
        (await server.Logs.WaitForAsync(l => l.EventId.Id == 1040)).Should().NotBeNull();
    }

    [Fact]
    public async Task IncompletePacket_FinishedWithinTimeout_ConnectionStaysOpen()
    {
        await using var server = await EngineServer.StartAsync(o => o.IncompletePacketTimeout = TimeSpan.FromSeconds(2));
        await using var client = await server.ConnectAsync("slow", keepAlive: 0);
        await client.SubscribeAsync("slow/#");
        // PUBLISH QoS 0 "slow/1" with an empty property length and payload "ok", sent in two parts.
        byte[] publish = [0x30, 0x0B, 0x00, 0x06, (byte)'s', (byte)'l', (byte)'o', (byte)'w', (byte)'/', (byte)'1', 0x00, (byte)'o', (byte)'k'];

        await client.SendRawAsync(publish.AsMemory(0, 5));
        await Task.Delay(300);
        await client.SendRawAsync(publish.AsMemory(5));

        RawMqttClient.PayloadText(await client.ExpectPublishAsync()).Should().Be("ok");
        await Task.Delay(3000);
        client.IsClosed.Should().BeFalse("the packet was completed in time and nothing is pending");
        (await client.PingAsync()).Should().BeEmpty();
    }
}
