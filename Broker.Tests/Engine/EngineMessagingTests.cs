using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Publish/subscribe through the real connection handler on loopback TCP, both protocol versions.</summary>
public sealed class EngineMessagingTests
{
    public static TheoryData<MqttProtocolVersion, MqttQos> VersionsAndQos()
    {
        var data = new TheoryData<MqttProtocolVersion, MqttQos>();
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            foreach (var qos in new[] { MqttQos.AtMostOnce, MqttQos.AtLeastOnce, MqttQos.ExactlyOnce })
            {
                data.Add(version, qos);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(VersionsAndQos))]
    public async Task Publish_EachQos_DeliveredOnceWithFullAckFlows(MqttProtocolVersion version, MqttQos qos)
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub", version);
        (await subscriber.SubscribeAsync("t/#", MqttQos.ExactlyOnce)).ReasonCodes.Should().Equal(MqttReasonCode.GrantedQos2);
        await using var publisher = await server.ConnectAsync("pub", version);

        var ack = await publisher.PublishAsync("t/x", "hello", qos);

        var expectedAck = qos switch
        {
            MqttQos.AtLeastOnce => MqttPacketType.PubAck,
            MqttQos.ExactlyOnce => MqttPacketType.PubComp,
            _ => (MqttPacketType?)null,
        };
        ack?.PacketType.Should().Be(expectedAck!.Value);
        ack?.ReasonCode.Should().Be(MqttReasonCode.Success);

        var received = await subscriber.ExpectPublishAsync();
        received.Topic.Should().Be("t/x");
        RawMqttClient.PayloadText(received).Should().Be("hello");
        received.Qos.Should().Be(qos);
        received.Retain.Should().BeFalse();
        received.Dup.Should().BeFalse();
        if (qos == MqttQos.AtMostOnce)
        {
            received.PacketId.Should().Be(0);
        }
        else
        {
            received.PacketId.Should().NotBe(0);
        }
        await AckAsync(subscriber, received);

        await ExpectMarkerNextAsync(subscriber, publisher, "t/marker", "the message is delivered exactly once");
        server.Broker.MessagesSent.Should().BeGreaterThanOrEqualTo(2);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Publish_Qos2RetransmittedBeforePubRel_DeliveredOnce(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub", version);
        await subscriber.SubscribeAsync("q2/#", MqttQos.AtMostOnce);
        await using var publisher = await server.ConnectAsync("pub", version);

        var publish = RawMqttClient.Publish("q2/a", "once", MqttQos.ExactlyOnce, packetId: 42);
        await publisher.SendAsync(publish);
        await publisher.ExpectAckAsync(MqttPacketType.PubRec, 42);
        publish.Dup = true;
        await publisher.SendAsync(publish);
        await publisher.ExpectAckAsync(MqttPacketType.PubRec, 42);
        await publisher.SendAsync(new PubAckPacket(MqttPacketType.PubRel) { PacketId = 42 });
        await publisher.ExpectAckAsync(MqttPacketType.PubComp, 42);

        RawMqttClient.PayloadText(await subscriber.ExpectPublishAsync()).Should().Be("once");
        await ExpectMarkerNextAsync(subscriber, publisher, "q2/marker", "a QoS 2 retransmission must not be delivered twice");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Retained_SetReplaceClear_NewSubscribersSeeLatestOrNothing(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var publisher = await server.ConnectAsync("pub", version);
        await publisher.PublishAsync("r/1", "v1", MqttQos.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/1", "v2", MqttQos.AtLeastOnce, retain: true);
        server.Broker.RetainedMessageCount.Should().Be(1);

        await using var first = await server.ConnectAsync("first", version);
        await first.SubscribeAsync("r/#", MqttQos.AtLeastOnce);
        var retained = await first.ExpectPublishAsync();
        RawMqttClient.PayloadText(retained).Should().Be("v2");
        retained.Retain.Should().BeTrue("retained messages sent on subscribe carry RETAIN=1 [MQTT-3.3.1-8]");
        await AckAsync(first, retained);

        await publisher.PublishAsync("r/1", "", MqttQos.AtLeastOnce, retain: true);
        var cleared = await first.ExpectPublishAsync();
        cleared.Payload.Length.Should().Be(0);
        cleared.Retain.Should().BeFalse("an established subscription gets RETAIN=0 unless Retain As Published");
        await AckAsync(first, cleared);
        server.Broker.RetainedMessageCount.Should().Be(0);

        await using var second = await server.ConnectAsync("second", version);
        await second.SubscribeAsync("r/#", MqttQos.AtLeastOnce);
        await ExpectMarkerNextAsync(second, publisher, "r/marker", "the retained message was cleared");
    }

    [Fact]
    public async Task Retained_RetainHandlingAndRetainAsPublished_FollowSubscriptionOptions()
    {
        await using var server = await EngineServer.StartAsync();
        await using var publisher = await server.ConnectAsync("pub");
        await publisher.PublishAsync("rh/1", "kept", MqttQos.AtLeastOnce, retain: true);
        await using var client = await server.ConnectAsync("client");

        await client.SubscribeAsync("rh/#", retainHandling: MqttRetainHandling.DoNotSend);
        await ExpectMarkerNextAsync(client, publisher, "rh/m1", "Retain Handling 2 sends no retained message");

        await client.SubscribeAsync("rh/+", retainHandling: MqttRetainHandling.SendAtSubscribeIfNew);
        (await client.ExpectPublishAsync()).Topic.Should().Be("rh/1");
        await client.SubscribeAsync("rh/+", retainHandling: MqttRetainHandling.SendAtSubscribeIfNew);
        await ExpectMarkerNextAsync(client, publisher, "rh/m2", "Retain Handling 1 sends nothing for an existing subscription");

        await client.SubscribeAsync("rap/#", retainAsPublished: true);
        await publisher.PublishAsync("rap/x", "live", MqttQos.AtLeastOnce, retain: true);
        var live = await client.ExpectPublishAsync();
        live.Retain.Should().BeTrue("Retain As Published keeps the RETAIN flag [MQTT-3.3.1-13]");
    }

    [Fact]
    public async Task Input_PacketsSplitByteByByteAndCoalesced_AllDecoded()
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("split/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        // One QoS 1 PUBLISH delivered to the server one byte per TCP write.
        var one = new System.Buffers.ArrayBufferWriter<byte>();
        OmniBroker.Mqtt.Codec.MqttPacketWriter.Write(one, RawMqttClient.Publish("split/one", new string('s', 300), MqttQos.AtLeastOnce, packetId: 1),
            MqttProtocolVersion.V500);
        foreach (var b in one.WrittenMemory.ToArray())
        {
            await publisher.SendRawAsync(new[] { b });
        }
        await publisher.ExpectAckAsync(MqttPacketType.PubAck, 1);

        // Fifty PUBLISH packets in a single write.
        var many = new System.Buffers.ArrayBufferWriter<byte>();
        for (ushort i = 0; i < 50; i++)
        {
            OmniBroker.Mqtt.Codec.MqttPacketWriter.Write(many, RawMqttClient.Publish("split/many", $"m{i}", MqttQos.AtLeastOnce, packetId: (ushort)(i + 2)),
                MqttProtocolVersion.V500);
        }
        await publisher.SendRawAsync(many.WrittenMemory);
        for (ushort i = 0; i < 50; i++)
        {
            await publisher.ExpectAckAsync(MqttPacketType.PubAck, (ushort)(i + 2));
        }

        var split = await subscriber.ExpectPublishAsync();
        RawMqttClient.PayloadText(split).Should().Be(new string('s', 300));
        await AckAsync(subscriber, split);
        for (var i = 0; i < 50; i++)
        {
            var publish = await subscriber.ExpectPublishAsync();
            RawMqttClient.PayloadText(publish).Should().Be($"m{i}", "order per publisher is kept");
            await AckAsync(subscriber, publish);
        }
    }

    [Fact]
    public async Task Retained_MoreThanTheQueueHolds_AllDeliveredThroughTheWindow()
    {
        await using var server = await EngineServer.StartAsync(o => o.MaxQueuedMessagesPerSession = 3);
        await using var publisher = await server.ConnectAsync("pub");
        for (var i = 0; i < 6; i++)
        {
            await publisher.PublishAsync($"many/{i}", $"r{i}", MqttQos.AtLeastOnce, retain: true);
        }
        await using var slow = await server.ConnectAsync("slow", properties: new MqttProperties { ReceiveMaximum = 1 });

        await slow.SubscribeAsync("many/#", MqttQos.AtLeastOnce);

        var topics = new List<string>();
        while (topics.Count < 6)
        {
            var publish = await slow.ExpectPublishAsync();
            publish.Retain.Should().BeTrue();
            topics.Add(publish.Topic);
            await AckAsync(slow, publish);
        }
        topics.Should().BeEquivalentTo(Enumerable.Range(0, 6).Select(i => $"many/{i}"), "[MQTT-3.3.1-6]: every retained message is sent");
        server.Broker.MessagesDropped.Should().Be(0);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task OverlappingSubscriptions_OneDeliveryAtHighestQos(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub", version);
        await subscriber.SubscribeAsync("o/#", MqttQos.AtMostOnce, subscriptionId: version == MqttProtocolVersion.V500 ? 1u : null);
        await subscriber.SubscribeAsync("o/+", MqttQos.AtLeastOnce, subscriptionId: version == MqttProtocolVersion.V500 ? 2u : null);
        await using var publisher = await server.ConnectAsync("pub", version);

        await publisher.PublishAsync("o/x", "both", MqttQos.ExactlyOnce);

        var received = await subscriber.ExpectPublishAsync();
        received.Qos.Should().Be(MqttQos.AtLeastOnce);
        if (version == MqttProtocolVersion.V500)
        {
            received.Properties!.SubscriptionIdentifiers.Should().BeEquivalentTo(new[] { 1u, 2u });
        }
        await AckAsync(subscriber, received);
        await ExpectMarkerNextAsync(subscriber, publisher, "o/marker", "overlapping subscriptions are merged into one delivery");
    }

    [Fact]
    public async Task NoLocal_OwnPublications_NotReceived()
    {
        await using var server = await EngineServer.StartAsync();
        await using var client = await server.ConnectAsync("self");
        await client.SubscribeAsync("nl/#", MqttQos.AtLeastOnce, noLocal: true);
        await using var other = await server.ConnectAsync("other");

        (await client.PublishAsync("nl/1", "mine", MqttQos.AtLeastOnce))!.ReasonCode.Should().Be(MqttReasonCode.NoMatchingSubscribers);

        await ExpectMarkerNextAsync(client, other, "nl/marker", "No Local suppresses the client's own messages");
    }

    [Fact]
    public async Task SharedSubscription_EachMessageToExactlyOneMember_RoundRobin()
    {
        await using var server = await EngineServer.StartAsync();
        await using var member1 = await server.ConnectAsync("m1");
        await using var member2 = await server.ConnectAsync("m2");
        await using var observer = await server.ConnectAsync("observer");
        foreach (var member in new[] { member1, member2 })
        {
            await member.SubscribeAsync("$share/workers/jobs/#", MqttQos.AtLeastOnce);
            await member.SubscribeAsync("done");
        }
        await observer.SubscribeAsync("jobs/#");
        await using var publisher = await server.ConnectAsync("pub");

        for (var i = 0; i < 10; i++)
        {
            await publisher.PublishAsync($"jobs/{i}", $"job-{i}", MqttQos.AtLeastOnce);
        }

        var seen = new List<string>();
        foreach (var member in new[] { member1, member2 })
        {
            for (var i = 0; i < 5; i++)
            {
                var job = await member.ExpectPublishAsync();
                seen.Add(RawMqttClient.PayloadText(job));
                await AckAsync(member, job);
            }
        }
        seen.Should().OnlyHaveUniqueItems().And.HaveCount(10);
        for (var i = 0; i < 10; i++)
        {
            RawMqttClient.PayloadText(await observer.ExpectPublishAsync()).Should().Be($"job-{i}");
        }
        // Both members subscribe to "done" normally: the marker is the next message for each, so no job was duplicated.
        await publisher.PublishAsync("done", "marker", MqttQos.AtLeastOnce);
        RawMqttClient.PayloadText(await member1.ExpectPublishAsync()).Should().Be("marker");
        RawMqttClient.PayloadText(await member2.ExpectPublishAsync()).Should().Be("marker");
    }

    [Fact]
    public async Task SharedSubscription_NoRetainedMessagesOnSubscribe()
    {
        await using var server = await EngineServer.StartAsync();
        await using var publisher = await server.ConnectAsync("pub");
        await publisher.PublishAsync("sr/1", "retained", MqttQos.AtLeastOnce, retain: true);
        await using var member = await server.ConnectAsync("member");
        await member.SubscribeAsync("$share/g/sr/#", MqttQos.AtLeastOnce);
        await member.SubscribeAsync("marker");

        await ExpectMarkerNextAsync(member, publisher, "marker", "shared subscriptions get no retained messages");
    }

    [Fact]
    public async Task Unsubscribe_ReportsPerFilterAndStopsDelivery()
    {
        await using var server = await EngineServer.StartAsync();
        await using var client = await server.ConnectAsync("client");
        await client.SubscribeAsync("u/#");
        await client.SubscribeAsync("marker");
        await using var publisher = await server.ConnectAsync("pub");

        var unsubscribe = new UnsubscribePacket { PacketId = client.NextPacketId(), Filters = ["u/#", "never/subscribed"] };
        await client.SendAsync(unsubscribe);
        var unsubAck = await client.ExpectAsync<UnsubAckPacket>();

        unsubAck.PacketId.Should().Be(unsubscribe.PacketId);
        unsubAck.ReasonCodes.Should().Equal(MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted);
        await publisher.PublishAsync("u/1", "gone");
        await ExpectMarkerNextAsync(client, publisher, "marker", "the subscription was removed");
        server.Broker.SubscriptionCount.Should().Be(1);
    }

    [Fact]
    public async Task TopicAlias_Inbound_ResolvesAliasAndRejectsOutOfRange()
    {
        await using var server = await EngineServer.StartAsync(o => o.TopicAliasMaximum = 4);
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("alias/#");
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("alias/topic", "first", properties: new MqttProperties { TopicAlias = 3 });
        await publisher.SendAsync(RawMqttClient.Publish("", "second", properties: new MqttProperties { TopicAlias = 3 }));

        var first = await subscriber.ExpectPublishAsync();
        var second = await subscriber.ExpectPublishAsync();
        first.Topic.Should().Be("alias/topic");
        second.Topic.Should().Be("alias/topic");
        RawMqttClient.PayloadText(second).Should().Be("second");
        second.Properties?.TopicAlias.Should().BeNull("aliases are per connection and not forwarded");

        await publisher.SendAsync(RawMqttClient.Publish("alias/x", "bad", properties: new MqttProperties { TopicAlias = 5 }));
        var closing = await publisher.WaitForCloseAsync();
        closing.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
            .Which.ReasonCode.Should().Be(MqttReasonCode.TopicAliasInvalid);
    }

    [Fact]
    public async Task MaximumPacketSize_OfClient_LargerMessageDroppedAndCounted()
    {
        await using var server = await EngineServer.StartAsync();
        await using var small = await server.ConnectAsync("small", properties: new MqttProperties { MaximumPacketSize = 100 });
        await small.SubscribeAsync("big/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("big/1", new string('x', 300), MqttQos.AtLeastOnce);

        await ExpectMarkerNextAsync(small, publisher, "big/marker", "a packet above the client's Maximum Packet Size is never sent");
        server.Broker.MessagesDropped.Should().Be(1);
        server.Logs.WithEventId(1207).Should().ContainSingle().Which.Value("Reason").Should().Be("too_large");
    }

    [Fact]
    public async Task ReceiveMaximum_OfClient_LimitsOutboundInflight()
    {
        await using var server = await EngineServer.StartAsync();
        await using var slow = await server.ConnectAsync("slow", properties: new MqttProperties { ReceiveMaximum = 1 });
        await slow.SubscribeAsync("rm/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("rm/1", "one", MqttQos.AtLeastOnce);
        await publisher.PublishAsync("rm/2", "two", MqttQos.AtLeastOnce);
        await publisher.PublishAsync("rm/3", "zero", MqttQos.AtMostOnce);

        var one = await slow.ExpectPublishAsync();
        RawMqttClient.PayloadText(one).Should().Be("one");
        RawMqttClient.PayloadText(await slow.ExpectPublishAsync()).Should().Be("zero", "QoS 0 may pass while the window is full, QoS 1 may not");
        await AckAsync(slow, one);
        RawMqttClient.PayloadText(await slow.ExpectPublishAsync()).Should().Be("two");
    }

    [Fact]
    public async Task UserPropertiesAndResponseTopic_PassedThroughUnchanged()
    {
        await using var server = await EngineServer.StartAsync();
        await using var subscriber = await server.ConnectAsync("sub");
        await subscriber.SubscribeAsync("req/#");
        await using var publisher = await server.ConnectAsync("pub");
        var properties = new MqttProperties
        {
            UserProperties = [new("k", "v"), new("k", "v2")],
            ResponseTopic = "resp/1",
            CorrelationData = new byte[] { 1, 2, 3 },
            ContentType = "text/plain",
            PayloadFormatIndicator = 1,
            MessageExpiryInterval = 3600,
        };

        await publisher.PublishAsync("req/1", "ping", properties: properties);

        var received = (await subscriber.ExpectPublishAsync()).Properties!;
        received.UserProperties.Should().Equal(properties.UserProperties);
        received.ResponseTopic.Should().Be("resp/1");
        received.CorrelationData!.Value.ToArray().Should().Equal(1, 2, 3);
        received.ContentType.Should().Be("text/plain");
        received.PayloadFormatIndicator.Should().Be(1);
        received.MessageExpiryInterval.Should().BeInRange(3590u, 3600u);
    }
}
