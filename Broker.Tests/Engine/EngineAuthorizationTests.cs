using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>The engine side of authorization: identity required, CONNECT/PUBLISH/SUBSCRIBE/receive decisions, policy reload.</summary>
public sealed class EngineAuthorizationTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Connect_WithoutClientIdentity_RefusedNotAuthorized(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync(o => o.RequireClientIdentity = true);

        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("anon", version));
        await using var _ = client;

        // 3.1.1 return code 0x05 decodes to NotAuthorized as well.
        connAck.ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        connAck.SessionPresent.Should().BeFalse();
        (await client.WaitForCloseAsync()).Should().BeEmpty();
        server.Logs.WithEventId(1001).Should().ContainSingle();
        server.Broker.SessionCount.Should().Be(0);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Connect_DeniedByPolicy_RefusedNotAuthorized(MqttProtocolVersion version)
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { DeniedClients = ["banned"] } };
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);

        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("banned", version));
        await using var _ = client;

        connAck.ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        (await client.WaitForCloseAsync()).Should().BeEmpty();
        (await server.Logs.WaitForAsync(l => l.EventId.Id == 1001)).Value("Reason").Should().Be("client denied by test policy");
    }

    [Fact]
    public async Task Publish_DeniedV5_NegativeAckAndNeverDelivered()
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { PublishPrefixes = ["ok/"] } };
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("#", MqttQos.ExactlyOnce);
        await using var publisher = await server.ConnectAsync("pub");

        (await publisher.PublishAsync("secret/1", "x", MqttQos.AtLeastOnce))!.ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        var pubRec = await publisher.PublishAsync("secret/2", "x", MqttQos.ExactlyOnce);
        pubRec!.PacketType.Should().Be(MqttPacketType.PubRec);
        pubRec.ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        await publisher.PublishAsync("secret/3", "x");

        await ExpectMarkerNextAsync(subscriber, publisher, "ok/marker", "denied messages are never delivered");
        // One aggregated line for the burst (the count of the rest follows at most once per interval).
        server.Logs.WithEventId(1106).Should().ContainSingle().Which.Value("Reason").Should().Be("publish_denied");
        publisher.IsClosed.Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Publish_DeniedV311_AcknowledgedDroppedOptionallyDisconnected(bool disconnect)
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { PublishPrefixes = ["ok/"] } };
        await using var server = await EngineServer.StartAsync(o => o.DisconnectOnDeniedPublishV311 = disconnect, authorizer);
        await using var subscriber = await server.ConnectAsync("sub", MqttProtocolVersion.V311);
        await subscriber.SubscribeAsync("#", MqttQos.AtLeastOnce);
        await using var marker = await server.ConnectAsync("marker", MqttProtocolVersion.V311);
        await using var publisher = await server.ConnectAsync("pub", MqttProtocolVersion.V311);

        var ack = await publisher.PublishAsync("secret/1", "x", MqttQos.AtLeastOnce);

        ack!.ReasonCode.Should().Be(MqttReasonCode.Success, "3.1.1 has no negative PUBACK");
        if (disconnect)
        {
            (await publisher.WaitForCloseAsync()).Should().BeEmpty();
        }
        await ExpectMarkerNextAsync(subscriber, marker, "ok/marker", "the denied message is dropped");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttReasonCode.UnspecifiedError)]
    [InlineData(MqttProtocolVersion.V500, MqttReasonCode.NotAuthorized)]
    public async Task Subscribe_PartlyDenied_OtherFiltersGranted(MqttProtocolVersion version, MqttReasonCode denied)
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { SubscribePrefixes = ["mine/"] } };
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);
        await using var client = await server.ConnectAsync("client", version);
        var subscribe = new SubscribePacket { PacketId = 7 };
        subscribe.Subscriptions.Add(new TopicSubscription("mine/#", new SubscriptionOptions(MqttQos.AtLeastOnce)));
        subscribe.Subscriptions.Add(new TopicSubscription("theirs/#", new SubscriptionOptions(MqttQos.AtLeastOnce)));
        subscribe.Subscriptions.Add(new TopicSubscription("$share/g/mine/x", new SubscriptionOptions(MqttQos.AtMostOnce)));

        await client.SendAsync(subscribe);
        var subAck = await client.ExpectAsync<SubAckPacket>();

        subAck.ReasonCodes.Should().Equal(MqttReasonCode.GrantedQos1, denied, MqttReasonCode.Success);
        server.Broker.SubscriptionCount.Should().Be(2);
        server.Logs.WithEventId(1106).Should().ContainSingle().Which.Value("Topic").Should().Be("theirs/#");
    }

    [Fact]
    public async Task Receive_Denied_NotDeliveredToThatSubscriber()
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { ReceiveDenied = ["t/private"] } };
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("t/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("t/private", "no", MqttQos.AtLeastOnce);

        await ExpectMarkerNextAsync(subscriber, publisher, "t/public", "CanReceive is checked per subscriber");
    }

    [Fact]
    public async Task PolicyChanged_SubscriptionsLosingRightRemovedAndDeniedClientsDisconnected()
    {
        var authorizer = new TestAuthorizer();
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);
        await using var client = await server.ConnectAsync("client");
        await client.SubscribeAsync("a/#", MqttQos.AtLeastOnce);
        await client.SubscribeAsync("b/#", MqttQos.AtLeastOnce);
        await using var doomed = await server.ConnectAsync("doomed");
        await using var publisher = await server.ConnectAsync("pub");

        authorizer.Change(new TestAuthorizer.Rules { SubscribePrefixes = ["b/"], DeniedClients = ["doomed"] });

        (await doomed.WaitForCloseAsync()).OfType<DisconnectPacket>().Single().ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        server.Logs.WithEventId(1102).Should().ContainSingle().Which.Value("Filter").Should().Be("a/#");
        await publisher.PublishAsync("a/1", "lost right", MqttQos.AtLeastOnce);
        await ExpectMarkerNextAsync(client, publisher, "b/marker", "the a/# subscription was removed");
        server.Broker.SubscriptionCount.Should().Be(1);
    }
}
