using System.Text;
using FluentAssertions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using Xunit;

namespace OmniBroker.Tests.Engine;

public sealed class RetainedMessageStoreTests
{
    private static readonly DateTimeOffset s_now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static MqttApplicationMessage Message(string topic, string payload, DateTimeOffset? expiresAt = null) =>
        new(topic, Encoding.UTF8.GetBytes(payload), MqttQos.AtLeastOnce, retain: true) { ExpiresAt = expiresAt };

    private static string[] Topics(RetainedMessageStore store, string filter)
    {
        var result = new List<MqttApplicationMessage>();
        store.Match(filter, s_now, result);
        return result.Select(m => m.Topic).Order(StringComparer.Ordinal).ToArray();
    }

    [Fact]
    public void Set_SameTopicTwice_ReplacesTheMessage()
    {
        using var store = new RetainedMessageStore();
        store.Set(Message("a/b", "1"));
        store.Set(Message("a/b", "2"));

        store.Count.Should().Be(1);
        Encoding.UTF8.GetString(store.Get("a/b")!.Payload).Should().Be("2");
    }

    [Fact]
    public void Set_EmptyPayload_ClearsTheTopic()
    {
        using var store = new RetainedMessageStore();
        store.Set(Message("a/b", "1"));
        store.Set(Message("a/b/c", "keep"));

        store.Set(Message("a/b", ""));

        store.Count.Should().Be(1);
        store.Get("a/b").Should().BeNull();
        store.Get("a/b/c").Should().NotBeNull();
        Topics(store, "#").Should().Equal("a/b/c");
    }

    [Fact]
    public void Match_Wildcards_ReturnMatchingTopicsOnly()
    {
        using var store = new RetainedMessageStore();
        foreach (var topic in new[] { "sport", "sport/tennis", "sport/tennis/p1", "sport/golf/p1", "news", "$SYS/load", "/lead" })
        {
            store.Set(Message(topic, topic));
        }

        Topics(store, "sport/#").Should().Equal("sport", "sport/golf/p1", "sport/tennis", "sport/tennis/p1");
        Topics(store, "sport/+/p1").Should().Equal("sport/golf/p1", "sport/tennis/p1");
        Topics(store, "+").Should().Equal("news", "sport");
        Topics(store, "+/+").Should().Equal("/lead", "sport/tennis");
        Topics(store, "#").Should().NotContain("$SYS/load", "[MQTT-4.7.2-1]").And.HaveCount(6);
        Topics(store, "$SYS/#").Should().Equal("$SYS/load");
        Topics(store, "sport/tennis").Should().Equal("sport/tennis");
        Topics(store, "nothing/+").Should().BeEmpty();
    }

    [Fact]
    public void Match_ExpiredMessage_IsSkippedAndRemoved()
    {
        using var store = new RetainedMessageStore();
        store.Set(Message("a/old", "x", s_now.AddSeconds(-1)));
        store.Set(Message("a/new", "y", s_now.AddSeconds(60)));

        Topics(store, "a/+").Should().Equal("a/new");
        store.Count.Should().Be(1);
    }
}

public sealed class SessionQueueTests
{
    private static readonly DateTimeOffset s_now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static MqttApplicationMessage Message(string topic, MqttQos qos = MqttQos.AtLeastOnce, DateTimeOffset? expiresAt = null) =>
        new(topic, [1, 2, 3], qos, retain: false) { ExpiresAt = expiresAt };

    private static List<OutboundItem> Take(MqttSession session, int window, IClientGrants? grants = null)
    {
        var batch = new List<OutboundItem>();
        var drops = default(DropCounts);
        session.TakeOutbound(batch, 1000, window, s_now, grants ?? AllowAllAuthorizer.Instance, ref drops);
        return batch;
    }

    [Fact]
    public void Enqueue_FullOfQos1_DropsTheNewMessage()
    {
        var session = new MqttSession("c", 3);
        for (var i = 0; i < 3; i++)
        {
            session.Enqueue(Message($"t/{i}"), MqttQos.AtLeastOnce, false, null).Outcome.Should().Be(EnqueueOutcome.Queued);
        }

        var result = session.Enqueue(Message("t/new"), MqttQos.AtLeastOnce, false, null);

        result.Outcome.Should().Be(EnqueueOutcome.DroppedNew);
        result.Dropped!.Topic.Should().Be("t/new");
        session.QueuedCount.Should().Be(3);
        Take(session, 10).Select(i => i.Message!.Topic).Should().Equal("t/0", "t/1", "t/2");
    }

    [Fact]
    public void Enqueue_FullWithQos0_DropsTheOldestQos0First()
    {
        var session = new MqttSession("c", 3);
        session.Enqueue(Message("q1/a"), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("q0/a", MqttQos.AtMostOnce), MqttQos.AtMostOnce, false, null);
        session.Enqueue(Message("q0/b", MqttQos.AtMostOnce), MqttQos.AtMostOnce, false, null);

        var result = session.Enqueue(Message("q1/b"), MqttQos.AtLeastOnce, false, null);

        result.Outcome.Should().Be(EnqueueOutcome.DroppedOldest);
        result.Dropped!.Topic.Should().Be("q0/a");
        session.QueuedCount.Should().Be(3);
        // Original order is kept across the two internal queues.
        Take(session, 10).Select(i => i.Message!.Topic).Should().Equal("q1/a", "q0/b", "q1/b");
    }

    [Fact]
    public void TakeOutbound_WindowFull_HoldsQos1ButLetsQos0Pass()
    {
        var session = new MqttSession("c", 100);
        session.Enqueue(Message("a"), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("b"), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("c", MqttQos.AtMostOnce), MqttQos.AtMostOnce, false, null);

        var first = Take(session, window: 1);

        first.Select(i => i.Message!.Topic).Should().Equal("a", "c");
        first[0].PacketId.Should().NotBe(0);
        first[1].PacketId.Should().Be(0);
        Take(session, 1).Should().BeEmpty("the window of 1 is in use");

        session.OnPubAck(first[0].PacketId).Should().BeTrue();
        session.OnPubAck(first[0].PacketId).Should().BeFalse("already acknowledged");
        Take(session, 1).Select(i => i.Message!.Topic).Should().Equal("b");
    }

    [Fact]
    public void TakeOutbound_ExpiredAndDenied_AreDroppedAndCounted()
    {
        var session = new MqttSession("c", 100);
        session.Enqueue(Message("old", expiresAt: s_now.AddSeconds(-1)), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("secret"), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("ok"), MqttQos.AtLeastOnce, false, null);
        var batch = new List<OutboundItem>();
        var drops = default(DropCounts);

        session.TakeOutbound(batch, 100, 10, s_now, new DenyTopic("secret"), ref drops);

        batch.Select(i => i.Message!.Topic).Should().Equal("ok");
        drops.Expired.Should().Be(1);
        drops.Denied.Should().Be(1);
    }

    [Fact]
    public void PrepareResend_AfterReconnect_ResendsPublishWithDupAndPubRelInOrder()
    {
        var session = new MqttSession("c", 100);
        session.Enqueue(Message("q2"), MqttQos.ExactlyOnce, false, null);
        session.Enqueue(Message("q1"), MqttQos.AtLeastOnce, false, null);
        var sent = Take(session, 10);
        sent.Select(i => i.Dup).Should().Equal(false, false);
        session.OnPubRec(sent[0].PacketId, MqttReasonCode.Success).Should().Be(PubRecOutcome.SendPubRel);

        lock (session.Sync)
        {
            session.PrepareResendLocked();
        }
        var resent = Take(session, 10);

        resent.Should().HaveCount(2);
        resent[0].IsPubRel.Should().BeTrue();
        resent[0].PacketId.Should().Be(sent[0].PacketId);
        resent[1].IsPubRel.Should().BeFalse();
        resent[1].Dup.Should().BeTrue();
        resent[1].PacketId.Should().Be(sent[1].PacketId);
        session.OnPubComp(sent[0].PacketId).Should().BeTrue();
        session.OnPubAck(sent[1].PacketId).Should().BeTrue();
        session.InflightCount.Should().Be(0);
    }

    [Fact]
    public void InboundQos2_PacketIdHeldUntilPubRel()
    {
        var session = new MqttSession("c", 10);

        session.TryBeginInboundQos2(7).Should().BeTrue();
        session.TryBeginInboundQos2(7).Should().BeFalse("a retransmission must not be delivered twice");
        session.InboundQos2Count.Should().Be(1);
        session.CompleteInboundQos2(7).Should().BeTrue();
        session.CompleteInboundQos2(7).Should().BeFalse();
        session.TryBeginInboundQos2(7).Should().BeTrue("the identifier is free again after PUBREL");
    }

    [Fact]
    public void EndLocked_CountsUndeliveredMessages()
    {
        var session = new MqttSession("c", 10);
        session.Enqueue(Message("a"), MqttQos.AtLeastOnce, false, null);
        session.Enqueue(Message("b", MqttQos.AtMostOnce), MqttQos.AtMostOnce, false, null);
        Take(session, 10);
        session.Enqueue(Message("c"), MqttQos.AtLeastOnce, false, null);

        (int Qos12, int Qos0) lost;
        lock (session.Sync)
        {
            lost = session.EndLocked();
        }

        lost.Should().Be((2, 0));
        session.Enqueue(Message("d"), MqttQos.AtLeastOnce, false, null).Outcome.Should().Be(EnqueueOutcome.SessionEnded);
    }

    private sealed class DenyTopic(string topic) : IClientGrants
    {
        public bool CanPublish(string t, MqttQos qos, bool retain) => true;

        public bool CanSubscribe(string filter) => true;

        public bool CanReceive(string t) => t != topic;
    }
}
