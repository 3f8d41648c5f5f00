using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Engine;

/// <summary>Topic aliases on the PUBLISH packets the broker sends (5.0 §3.3.2.3.4), Server Keep Alive, and the
/// graceful close after a server DISCONNECT, through the real engine and a raw client.</summary>
public sealed class OutboundTopicAliasTests
{
    private static async Task<List<PublishPacket>> ReceiveAsync(EngineServer server, MqttProperties? connect, params string[] topics)
    {
        await using var subscriber = await server.ConnectAsync("alias-sub", properties: connect);
        await subscriber.SubscribeAsync("alias/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("alias-pub");
        foreach (var topic in topics)
        {
            await publisher.PublishAsync(topic, "payload of " + topic, MqttQos.AtLeastOnce);
        }

        var received = new List<PublishPacket>();
        for (var i = 0; i < topics.Length; i++)
        {
            var publish = await subscriber.ExpectPublishAsync();
            await subscriber.SendAsync(new PubAckPacket(MqttPacketType.PubAck) { PacketId = publish.PacketId });
            received.Add(publish);
        }
        return received;
    }

    private static (string Topic, ushort? Alias, string Payload) Describe(PublishPacket p) =>
        (p.Topic, p.Properties?.TopicAlias, RawMqttClient.PayloadText(p));

    [Fact]
    public async Task OutboundAlias_ClientAcceptsTwo_FirstTopicsGetAliasesThenEmptyNames()
    {
        await using var server = await EngineServer.StartAsync();

        var received = await ReceiveAsync(server, new MqttProperties { TopicAliasMaximum = 2 },
            "alias/a", "alias/a", "alias/b", "alias/c", "alias/a", "alias/b", "alias/c");

        received.Select(Describe).Should().Equal(
            ("alias/a", (ushort?)1, "payload of alias/a"),
            ("", (ushort?)1, "payload of alias/a"),
            ("alias/b", (ushort?)2, "payload of alias/b"),
            ("alias/c", (ushort?)null, "payload of alias/c"), // table full: sent in full, no eviction
            ("", (ushort?)1, "payload of alias/a"),
            ("", (ushort?)2, "payload of alias/b"),
            ("alias/c", (ushort?)null, "payload of alias/c"));
    }

    [Fact]
    public async Task OutboundAlias_ClientAnnouncesNone_NoAliasSent()
    {
        await using var server = await EngineServer.StartAsync();

        var received = await ReceiveAsync(server, null, "alias/a", "alias/a");

        received.Should().OnlyContain(p => p.Topic == "alias/a" && (p.Properties == null || p.Properties.TopicAlias == null));
    }

    [Fact]
    public async Task OutboundAlias_DisabledByBroker_NoAliasSent()
    {
        await using var server = await EngineServer.StartAsync(o => o.OutboundTopicAliasMaximum = 0);

        var received = await ReceiveAsync(server, new MqttProperties { TopicAliasMaximum = 10 }, "alias/a", "alias/a");

        received.Should().OnlyContain(p => p.Topic == "alias/a" && (p.Properties == null || p.Properties.TopicAlias == null));
    }

    [Fact]
    public async Task OutboundAlias_FirstMessageTooLargeForClient_DoesNotEstablishAlias()
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("alias-small",
            properties: new MqttProperties { TopicAliasMaximum = 4, MaximumPacketSize = 100 });
        await subscriber.SubscribeAsync("alias/#");
        await using var publisher = await server.ConnectAsync("alias-pub");

        await publisher.PublishAsync("alias/x", new string('x', 200), MqttQos.AtLeastOnce); // dropped for the subscriber
        await publisher.PublishAsync("alias/x", "small", MqttQos.AtLeastOnce);

        var publish = await subscriber.ExpectPublishAsync();
        Describe(publish).Should().Be(("alias/x", (ushort?)1, "small"), "the client never saw the dropped packet's alias");
    }

    [Fact]
    public async Task ServerKeepAlive_MaximumZero_NoMaximum()
    {
        await using var server = await EngineServer.StartAsync(o => o.MaximumKeepAlive = 0);
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("ka", keepAlive: 0));
        await using var _ = client;

        connAck.Properties?.ServerKeepAlive.Should().BeNull();
    }

    [Fact]
    public async Task ServerKeepAlive_ClientAsksMoreThanMaximum_MaximumAnnounced()
    {
        await using var server = await EngineServer.StartAsync(o => o.MaximumKeepAlive = 60);
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("ka", keepAlive: 120));
        await using var _ = client;
        var (modest, modestAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("ka2", keepAlive: 30));
        await using var __ = modest;

        connAck.Properties!.ServerKeepAlive.Should().Be(60);
        modestAck.Properties?.ServerKeepAlive.Should().BeNull("30 s is within the maximum");
    }

    [Fact]
    public async Task ServerDisconnect_PeerFloodsAfterViolation_DisconnectArrivesAndCloseIsClean()
    {
        await using var server = await EngineServer.StartAsync(o => o.ReceiveMaximum = 1);
        await using var client = await server.ConnectAsync("flood");

        // Two QoS 2 PUBLISH without waiting (the second exceeds Receive Maximum 1), then 4 MiB of PINGREQ: more than
        // the transport buffers (1 MiB) above the socket, so they are still in the kernel when the broker closes.
        // Closing a socket with unread input sends a reset, which can destroy the DISCONNECT before it is read.
        var burst = new List<byte>();
        foreach (ushort id in new ushort[] { 1, 2 })
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            OmniBroker.Mqtt.Codec.MqttPacketWriter.Write(buffer, RawMqttClient.Publish("flood/x", "x", MqttQos.ExactlyOnce, packetId: id), MqttProtocolVersion.V500);
            burst.AddRange(buffer.WrittenSpan.ToArray());
        }
        var pings = new byte[4 * 1024 * 1024];
        for (var i = 0; i < pings.Length; i += 2)
        {
            pings[i] = 0xC0;
        }
        burst.AddRange(pings);
        // The write may block while the broker does not read; it ends when the broker drains or closes.
        var sending = Task.Run(async () =>
        {
            try
            {
                await client.SendRawAsync(burst.ToArray());
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        });

        var packets = await client.WaitForCloseAsync(TimeSpan.FromSeconds(10));

        packets.OfType<DisconnectPacket>().Should().ContainSingle().Which.ReasonCode.Should().Be(MqttReasonCode.ReceiveMaximumExceeded);
        client.ReceiveError.Should().BeNull("the broker drains what the client still sends and closes without a reset");
        await sending.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
