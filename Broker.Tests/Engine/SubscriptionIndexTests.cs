using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using Xunit;

namespace OmniBroker.Tests.Engine;

public sealed class SubscriptionIndexTests
{
    private static Subscription Sub(MqttSession session, string filter, MqttQos qos = MqttQos.AtMostOnce) =>
        new(session, filter, new SubscriptionOptions(qos), 0);

    private static (List<Subscription> Subscriptions, List<SharedGroup> Groups) Match(SubscriptionIndex index, string topic)
    {
        var subscriptions = new List<Subscription>();
        var groups = new List<SharedGroup>();
        index.Match(topic, subscriptions, groups);
        return (subscriptions, groups);
    }

    private static string[] MatchedFilters(SubscriptionIndex index, string topic) =>
        Match(index, topic).Subscriptions.Select(s => s.Filter).Order(StringComparer.Ordinal).ToArray();

    [Theory]
    [InlineData("sport/tennis/player1", new[] { "#", "+/+/+", "sport/#", "sport/tennis/+", "sport/tennis/player1", "sport/tennis/player1/#" })]
    [InlineData("sport", new[] { "#", "+", "sport", "sport/#" })]
    [InlineData("sport/", new[] { "#", "+/+", "sport/", "sport/#", "sport/+" })]
    [InlineData("/finance", new[] { "#", "+/+", "+/finance", "/finance" })]
    [InlineData("sport/tennis/player1/ranking", new[] { "#", "sport/#", "sport/tennis/player1/#" })]
    public void Match_WildcardFilters_ReturnsExactlyTheSpecExamples(string topic, string[] expected)
    {
        using var index = new SubscriptionIndex();
        var session = new MqttSession("c", 10);
        string[] filters =
        [
            "#", "+", "+/+", "+/+/+", "sport", "sport/", "sport/#", "sport/+", "sport/tennis/+", "sport/tennis/player1",
            "sport/tennis/player1/#", "sport/tennis/+/x", "+/finance", "/finance", "finance", "sport/+/player2",
        ];
        // Distinct sessions so every filter is its own entry even when they share a node.
        foreach (var filter in filters)
        {
            index.Add(Sub(new MqttSession(filter, 10), filter));
        }
        index.Add(Sub(session, "other/topic"));

        MatchedFilters(index, topic).Should().Equal(expected.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Match_DollarTopic_NotMatchedByLeadingWildcards()
    {
        using var index = new SubscriptionIndex();
        foreach (var filter in new[] { "#", "+/monitor/Clients", "$SYS/#", "$SYS/monitor/+", "+/#" })
        {
            index.Add(Sub(new MqttSession(filter, 10), filter));
        }

        // [MQTT-4.7.2-1]
        MatchedFilters(index, "$SYS/monitor/Clients").Should().Equal("$SYS/#", "$SYS/monitor/+");
        MatchedFilters(index, "SYS/monitor/Clients").Should().Equal("#", "+/#", "+/monitor/Clients");
    }

    [Fact]
    public void Add_SameSessionSameFilter_ReplacesInsteadOfDuplicating()
    {
        using var index = new SubscriptionIndex();
        var session = new MqttSession("c", 10);
        var first = Sub(session, "a/+", MqttQos.AtMostOnce);
        var second = Sub(session, "a/+", MqttQos.ExactlyOnce);

        index.Add(first).Should().BeNull();
        index.Add(second).Should().BeSameAs(first);

        index.Count.Should().Be(1);
        Match(index, "a/b").Subscriptions.Should().ContainSingle().Which.Should().BeSameAs(second);
        index.Remove(first).Should().BeFalse("the replaced subscription is no longer in the index");
        index.Remove(second).Should().BeTrue();
        index.Count.Should().Be(0);
        Match(index, "a/b").Subscriptions.Should().BeEmpty();
    }

    [Fact]
    public void Match_OverlappingFiltersOfOneSession_ReturnsEachSubscription()
    {
        using var index = new SubscriptionIndex();
        var session = new MqttSession("c", 10);
        index.Add(Sub(session, "a/#"));
        index.Add(Sub(session, "a/+"));
        index.Add(Sub(session, "a/b"));

        // The broker merges them into one delivery; the index reports every match.
        Match(index, "a/b").Subscriptions.Should().HaveCount(3).And.OnlyContain(s => s.Session == session);
    }

    [Fact]
    public void Match_SharedSubscriptions_ReturnsGroupsNotMembers()
    {
        using var index = new SubscriptionIndex();
        var a = new MqttSession("a", 10);
        var b = new MqttSession("b", 10);
        var c = new MqttSession("c", 10);
        index.Add(Sub(a, "$share/g1/sensors/+"));
        index.Add(Sub(b, "$share/g1/sensors/+"));
        index.Add(Sub(c, "$share/g2/sensors/#"));
        index.Add(Sub(c, "sensors/+"));

        var (subscriptions, groups) = Match(index, "sensors/t1");

        subscriptions.Should().ContainSingle().Which.Filter.Should().Be("sensors/+");
        groups.Select(g => g.Name).Should().BeEquivalentTo("g1", "g2");
        groups.Single(g => g.Name == "g1").Members.Select(m => m.Session.ClientId).Should().BeEquivalentTo("a", "b");
        index.Count.Should().Be(4);
    }

    [Fact]
    public void SharedGroup_NextStart_RoundRobinsOverMembers()
    {
        using var index = new SubscriptionIndex();
        index.Add(Sub(new MqttSession("a", 10), "$share/g/t"));
        index.Add(Sub(new MqttSession("b", 10), "$share/g/t"));
        index.Add(Sub(new MqttSession("c", 10), "$share/g/t"));
        var group = Match(index, "t").Groups.Single();

        var starts = Enumerable.Range(0, 6).Select(_ => group.NextStart(group.Members.Length)).ToArray();

        starts.Should().Equal(0, 1, 2, 0, 1, 2);
    }

    [Fact]
    public void Remove_LastSubscription_PrunesNodesAndGroups()
    {
        using var index = new SubscriptionIndex();
        var session = new MqttSession("a", 10);
        var shared = Sub(session, "$share/g/x/y/z");
        var plain = Sub(session, "x/+/z");
        index.Add(shared);
        index.Add(plain);

        index.Remove(shared).Should().BeTrue();
        index.Remove(plain).Should().BeTrue();
        index.Remove(plain).Should().BeFalse();

        index.Count.Should().Be(0);
        Match(index, "x/y/z").Subscriptions.Should().BeEmpty();
        Match(index, "x/y/z").Groups.Should().BeEmpty();
    }

    [Fact]
    public void Match_HundredThousandSubscriptions_FindsOnlyTheMatchingOnes()
    {
        using var index = new SubscriptionIndex();
        for (var i = 0; i < 100_000; i++)
        {
            var session = new MqttSession($"device-{i}", 10);
            index.Add(Sub(session, $"devices/{i}/commands/#"));
        }
        var monitor = new MqttSession("monitor", 10);
        index.Add(Sub(monitor, "devices/+/commands/reboot"));

        index.Count.Should().Be(100_001);
        var matched = Match(index, "devices/4242/commands/reboot").Subscriptions.Select(s => s.Session.ClientId);
        matched.Should().BeEquivalentTo("device-4242", "monitor");
        Match(index, "devices/100000/commands/reboot").Subscriptions.Select(s => s.Session.ClientId).Should().Equal("monitor");
        Match(index, "devices/4242/status").Subscriptions.Should().BeEmpty();
    }

    [Fact]
    public void Match_TopicWithThousandsOfLevels_DoesNotOverflowTheStack()
    {
        using var index = new SubscriptionIndex();
        var deepFilter = string.Join('/', Enumerable.Repeat("+", 20_000));
        index.Add(Sub(new MqttSession("deep", 10), deepFilter));
        index.Add(Sub(new MqttSession("all", 10), "#"));
        var topic = string.Join('/', Enumerable.Repeat("a", 20_000));

        Match(index, topic).Subscriptions.Select(s => s.Session.ClientId).Should().BeEquivalentTo("deep", "all");
    }

    [Theory]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/+", "a/b", true)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/+", "a", false)]
    [InlineData("#", "$SYS/x", false)]
    [InlineData("+/x", "$SYS/x", false)]
    [InlineData("$SYS/+", "$SYS/x", true)]
    [InlineData("a/+/c", "a/b/c/d", false)]
    public void MqttTopic_Matches_FollowsSpecRules(string filter, string topic, bool expected)
    {
        MqttTopic.Matches(filter, topic).Should().Be(expected);
    }

    [Theory]
    [InlineData("$share/group/a/b", true, "group", "a/b")]
    [InlineData("$share/g/#", true, "g", "#")]
    [InlineData("$share//a", false, null, null)]
    [InlineData("$share/g", false, null, null)]
    [InlineData("$share/g+/a", false, null, null)]
    [InlineData("a/#/b", false, null, null)]
    [InlineData("a/b#", false, null, null)]
    [InlineData("a/+/b", true, null, null)]
    public void TopicFilters_Validate_UsesCodecRulesAndSplitsShares(string filter, bool valid, string? group, string? inner)
    {
        TopicFilters.Validate(filter, out var shared).Should().Be(valid);
        if (group is not null)
        {
            shared.Should().BeTrue();
            TopicFilters.TryParseShared(filter, out var g, out var i).Should().BeTrue();
            g.Should().Be(group);
            i.Should().Be(inner);
        }
    }
}
