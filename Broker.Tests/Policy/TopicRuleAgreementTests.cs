using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

/// <summary>
/// The policy and the engine use one set of topic rules (the codec's <see cref="MqttTopic"/>): on the edge cases
/// ('$' topics, wildcard placement, empty levels, shared subscriptions) a filter the engine accepts is one the policy
/// can grant, and a topic the engine delivers to a subscription is one the policy lets through under a grant of
/// the same filter.
/// </summary>
public sealed class TopicRuleAgreementTests
{
    private static readonly string[] Filters =
    [
        "#", "+", "+/+", "a/#", "a/+", "a/+/c", "a//b", "a/", "/a", "/", "//", "+/", "/+", "/#", "a/+/#",
        "$SYS/#", "$SYS/+", "$SYS/broker/+", "+/broker/load", "$other/x",
        "$share/g/a/+", "$share/g/#", "$share/g/+/broker/load", "$share/g/$SYS/#", "$share/g//a",
    ];

    private static readonly string[] InvalidFilters =
    [
        "", "a/#/b", "a/b#", "a+/b", "#/a", "++", "a/\0", "$share/g", "$share/g/", "$share//a", "$share/g+/a", "$share/g#/a",
        "$share/g/a/#/b",
    ];

    private static readonly string[] Topics =
    [
        "a", "a/b", "a/b/c", "a/b/c/d", "a/", "a//b", "a//c", "/a", "/", "//", "b", "$SYS", "$SYS/x", "$SYS/broker/load",
        "x/broker/load", "$other/x", "a/$SYS",
    ];

    private static readonly string[] InvalidTopics = ["", "a/+", "a/#", "+", "#", "a/b+", "a\0b"];

    private static Subscription Sub(string filter) =>
        new(new MqttSession("c-" + filter, 10), filter, new SubscriptionOptions(MqttQos.AtMostOnce), 0);

    [Fact]
    public void SubscribeFilter_EdgeCases_PolicyGrantsExactlyWhatTheEngineAccepts()
    {
        // Grants that cover every valid filter of the table: '#' (not '$' topics) and the '$' prefixes used.
        var grants = TestPolicy.Compile("""
            rules:
              - id: everything
                effect: allow
                actions: [subscribe]
                topics: ["#", "$SYS/#", "$other/#"]
            """).Grants(PolicyTestCerts.Sensor001);

        foreach (var filter in Filters.Concat(InvalidFilters))
        {
            bool engineAccepts = TopicFilters.Validate(filter, out bool shared);
            engineAccepts.Should().Be(Filters.Contains(filter), $"the engine on '{filter}'");
            shared.Should().Be(filter.StartsWith("$share/", StringComparison.Ordinal));
            grants.CanSubscribe(filter).Should().Be(engineAccepts, $"the policy on '{filter}'");
        }
    }

    [Fact]
    public void PublishTopic_EdgeCases_PolicyAllowsExactlyTheTopicsTheCodecAccepts()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: everything
                effect: allow
                actions: [publish, receive]
                topics: ["#", "$SYS/#", "$other/#"]
            """).Grants(PolicyTestCerts.Sensor001);

        foreach (var topic in Topics.Concat(InvalidTopics))
        {
            bool valid = MqttTopic.IsValidTopicName(topic);
            valid.Should().Be(Topics.Contains(topic), $"the codec on '{topic}'");
            grants.CanPublish(topic, MqttQos.AtLeastOnce, false).Should().Be(valid, $"the policy on publish '{topic}'");
            grants.CanReceive(topic).Should().Be(valid, $"the policy on receive '{topic}'");
        }
    }

    [Fact]
    public void Receive_EdgeCases_PolicyAllowsExactlyWhatTheEngineDelivers()
    {
        foreach (var filter in Filters)
        {
            string topicFilter = MqttTopic.TopicFilterOf(filter).ToString();
            var policy = TestPolicy.Compile($$"""
                rules:
                  - id: one-filter
                    effect: allow
                    actions: [subscribe, receive]
                    topics: ["{{topicFilter}}"]
                """);
            var grants = policy.Grants(PolicyTestCerts.Sensor001);
            grants.CanSubscribe(filter).Should().BeTrue($"a grant of '{topicFilter}' covers a subscription to '{filter}'");

            using var index = new SubscriptionIndex();
            index.Add(Sub(filter));
            foreach (var topic in Topics)
            {
                var subscriptions = new List<Subscription>();
                var groups = new List<SharedGroup>();
                index.Match(topic, subscriptions, groups);
                bool engineDelivers = subscriptions.Count + groups.Count > 0;

                MqttTopic.Matches(topicFilter, topic).Should().Be(engineDelivers, $"the codec: '{filter}' against '{topic}'");
                grants.CanReceive(topic).Should().Be(engineDelivers, $"the policy: grant '{topicFilter}' against '{topic}'");
                policy.Explain(PolicyTestCerts.Sensor001, PolicyAction.Receive, topic).Allowed
                    .Should().Be(engineDelivers, $"policy explain: grant '{topicFilter}' against '{topic}'");
            }
        }
    }

    [Theory]
    [InlineData("#", "$SYS/x")]
    [InlineData("+/x", "$SYS/x")]
    [InlineData("+", "$SYS")]
    public void Deny_LeadingWildcard_ReachesDollarTopicsTheEngineWouldNotDeliver(string filter, string topic)
    {
        // The one intended difference: a deny fails closed, so its leading wildcard also reaches '$' topics.
        var grants = TestPolicy.Compile($$"""
            rules:
              - id: sys
                effect: allow
                actions: [receive]
                topics: ["$SYS/#"]
              - id: no-wildcard
                effect: deny
                actions: [receive]
                topics: ["{{filter}}"]
            """).Grants(PolicyTestCerts.Sensor001);

        MqttTopic.Matches(filter, topic).Should().BeFalse();
        MqttTopic.MatchesLevels(filter, topic).Should().BeTrue();
        grants.CanReceive(topic).Should().BeFalse();
    }
}
