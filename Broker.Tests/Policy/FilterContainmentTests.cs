using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy.Matching;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class FilterContainmentTests
{
    [Theory]
    [InlineData("devices/+/telemetry", "devices/d1/telemetry", true)]
    [InlineData("devices/+/telemetry", "devices/+/telemetry", true)]
    [InlineData("devices/+/telemetry", "devices/#", false)]
    [InlineData("devices/+/telemetry", "+/+/telemetry", false)]
    [InlineData("devices/+/telemetry", "devices/+/+", false)]
    [InlineData("devices/+/telemetry", "devices/d1/telemetry/x", false)]
    [InlineData("devices/+/telemetry", "devices/d1", false)]
    [InlineData("devices/#", "devices", true)]            // '#' covers the parent level
    [InlineData("devices/#", "devices/#", true)]
    [InlineData("devices/#", "devices/+/x/#", true)]
    [InlineData("devices/#", "devices/+", true)]
    [InlineData("devices/#", "+/x", false)]
    [InlineData("devices/#", "#", false)]
    [InlineData("devices/+", "devices/", true)]           // '+' matches an empty level
    [InlineData("devices/+", "devices", false)]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/b", "a/+", false)]
    [InlineData("#", "#", true)]
    [InlineData("#", "anything/at/all", true)]
    [InlineData("#", "$SYS/#", false)]                     // [MQTT-4.7.2-1]: a leading wildcard never reaches '$' topics
    [InlineData("#", "$SYS/broker/load", false)]
    [InlineData("+/broker/load", "$SYS/broker/load", false)]
    [InlineData("+/x", "+/x", true)]                       // a leading '+' request matches no '$' topic either
    [InlineData("$SYS/#", "$SYS/broker/load", true)]
    [InlineData("$SYS/#", "$SYS/#", true)]
    public void Contains_GrantAgainstRequest(string grant, string request, bool expected)
    {
        TopicFilters.Contains(TopicFilters.Split(grant), request).Should().Be(expected);
    }

    [Theory]
    [InlineData("devices/d9/telemetry", "devices/+/telemetry", true)]
    [InlineData("devices/d9/telemetry", "devices/#", true)]
    [InlineData("devices/d9/telemetry", "#", true)]
    [InlineData("devices/d9/telemetry", "devices/d1/telemetry", false)]
    [InlineData("devices/d9/telemetry", "devices/+/status", false)]
    [InlineData("devices/+/secrets", "devices/d1/#", true)]
    [InlineData("devices/+/secrets", "devices/d1/telemetry", false)]
    [InlineData("devices", "devices/#", true)]             // "devices/#" matches "devices"
    [InlineData("devices/#", "devices", true)]
    [InlineData("devices/x", "devices", false)]
    [InlineData("devices", "devices/x", false)]
    [InlineData("$SYS/#", "#", false)]                      // "#" never matches '$' topics
    [InlineData("$SYS/#", "+/broker", false)]
    [InlineData("#", "$SYS/broker", true)]                  // a leading-wildcard deny does reach '$' topics
    [InlineData("+/broker", "$SYS/broker", true)]
    [InlineData("a/+/c", "a/b/+", true)]
    [InlineData("a/+/c", "a/b/d", false)]
    public void Overlaps_DenyAgainstRequest(string deny, string request, bool expected)
    {
        TopicFilters.Overlaps(TopicFilters.Split(deny), request).Should().Be(expected);
    }

    [Fact]
    public void Subscribe_GrantWithPlus_AllowsOnlyContainedFilters()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: read-telemetry
                effect: allow
                actions: [subscribe, receive]
                topics: [devices/+/telemetry]
            """).Grants(PolicyTestCerts.BackendTelemetry);

        grants.CanSubscribe("devices/d1/telemetry").Should().BeTrue();
        grants.CanSubscribe("devices/+/telemetry").Should().BeTrue();
        grants.CanSubscribe("devices/#").Should().BeFalse();
        grants.CanSubscribe("#").Should().BeFalse();
        grants.CanSubscribe("devices/+/+").Should().BeFalse();
    }

    [Fact]
    public void Subscribe_DenyInsideWiderFilter_GrantsFilterAndWithholdsDeniedTopics()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: read-devices
                effect: allow
                actions: [subscribe, receive]
                topics: ["devices/#"]
              - id: not-d9
                effect: deny
                actions: [subscribe, receive]
                topics: [devices/d9/telemetry]
            """).Grants(PolicyTestCerts.BackendTelemetry);

        grants.CanSubscribe("devices/d1/telemetry").Should().BeTrue();
        grants.CanSubscribe("devices/+/status").Should().BeTrue();
        // Wider than the deny: granted, and devices/d9/telemetry is withheld at delivery.
        grants.CanSubscribe("devices/+/telemetry").Should().BeTrue();
        grants.CanSubscribe("devices/#").Should().BeTrue();
        grants.CanSubscribe("$share/g/devices/#").Should().BeTrue();
        // Inside the deny: refused.
        grants.CanSubscribe("devices/d9/telemetry").Should().BeFalse();
        grants.CanSubscribe("$share/g/devices/d9/telemetry").Should().BeFalse();
        grants.CanReceive("devices/d1/telemetry").Should().BeTrue();
        grants.CanReceive("devices/d9/telemetry").Should().BeFalse();
    }

    [Fact]
    public void Subscribe_SubscribeOnlyDeny_WithholdsItsTopicsFromWiderSubscriptions()
    {
        // The Paho suites' policy: everything, except subscribing to test/nosubscribe. The deny names subscribe only,
        // yet a subscription to '#' must not deliver what a subscription to test/nosubscribe could not.
        var grants = TestPolicy.Compile("""
            rules:
              - id: everything
                effect: allow
                actions: [publish, subscribe, receive]
                topics: ["#"]
              - id: nosubscribe
                effect: deny
                actions: [subscribe]
                topics: [test/nosubscribe, "secret/+/keys"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanSubscribe("test/nosubscribe").Should().BeFalse();
        grants.CanSubscribe("secret/a/keys").Should().BeFalse();
        grants.CanSubscribe("secret/+/keys").Should().BeFalse();
        grants.CanSubscribe("#").Should().BeTrue();
        grants.CanSubscribe("test/+").Should().BeTrue();
        grants.CanSubscribe("secret/a/#").Should().BeTrue();
        grants.CanReceive("test/nosubscribe").Should().BeFalse();
        grants.CanReceive("secret/a/keys").Should().BeFalse();
        grants.CanReceive("test/other").Should().BeTrue();
        grants.CanReceive("secret/a/keys/x").Should().BeTrue();
        // Publishing is not subscribing: the deny does not touch it.
        grants.CanPublish("test/nosubscribe", MqttQos.AtLeastOnce, false).Should().BeTrue();
    }

    [Theory]
    [InlineData("#", "$SYS/#", true)]        // a deny's leading wildcard reaches '$' topics (fail closed)
    [InlineData("+/x", "$SYS/x", true)]
    [InlineData("a/+", "a/b", true)]
    [InlineData("a/b", "a/+", false)]        // wider than the deny: not contained
    [InlineData("a/b", "#", false)]
    public void Contains_DenyFilter_TreatsDollarTopicsAsCovered(string deny, string request, bool expected)
    {
        TopicFilters.Contains(TopicFilters.Split(deny), request, isDeny: true).Should().Be(expected);
    }

    [Fact]
    public void Subscribe_UnionOfGrants_IsNotEnoughWithoutOneCoveringGrant()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: two
                effect: allow
                actions: [subscribe]
                topics: [a/x, a/y]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanSubscribe("a/x").Should().BeTrue();
        grants.CanSubscribe("a/+").Should().BeFalse(); // a/z is not granted
    }

    [Fact]
    public void Subscribe_SharedSubscription_JudgedOnInnerFilter()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: read-telemetry
                effect: allow
                actions: [subscribe]
                topics: [devices/+/telemetry]
            """).Grants(PolicyTestCerts.BackendTelemetry);

        grants.CanSubscribe("$share/workers/devices/+/telemetry").Should().BeTrue();
        grants.CanSubscribe("$share/workers/devices/#").Should().BeFalse();
        grants.CanSubscribe("$share/workers").Should().BeFalse();
        grants.CanSubscribe("$share//devices/+/telemetry").Should().BeFalse();
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/#/b")]
    [InlineData("a/b#")]
    [InlineData("a+/b")]
    public void Subscribe_InvalidFilter_IsDenied(string filter)
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [subscribe]
                topics: ["#"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanSubscribe(filter).Should().BeFalse();
    }

    [Fact]
    public void DollarTopics_LeadingWildcardGrant_DoesNotReachThem()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [publish, subscribe, receive]
                topics: ["#", "+/status"]
              - id: sys
                effect: allow
                actions: [receive]
                topics: ["$SYS/broker/#"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("$SYS/x", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanReceive("$SYS/status").Should().BeFalse();
        grants.CanReceive("$SYS/broker/uptime").Should().BeTrue();
        grants.CanSubscribe("$SYS/#").Should().BeFalse();
        grants.CanPublish("a/status", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void DollarTopics_LeadingWildcardDeny_DoesReachThem()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: sys
                effect: allow
                actions: [receive, subscribe]
                topics: ["$SYS/#"]
              - id: deny-all
                effect: deny
                actions: [receive, subscribe]
                topics: ["#"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanReceive("$SYS/broker/uptime").Should().BeFalse();
        grants.CanSubscribe("$SYS/#").Should().BeFalse();
    }

    [Fact]
    public void Trie_AgreesWithReferenceMatcher_OnGeneratedFiltersAndTopics()
    {
        // Every filter built from a small alphabet against every topic: the trie (hot path) must give exactly the
        // bits the one-filter reference matcher gives.
        string[] levels = ["a", "b", "$x", ""];
        var filters = new List<string>();
        var topics = new List<string>();
        foreach (var l1 in levels.Append("+").Append("#"))
        {
            filters.Add(l1);
            if (l1 == "#")
            {
                continue;
            }

            foreach (var l2 in levels.Append("+").Append("#"))
            {
                filters.Add(l1 + "/" + l2);
                if (l2 != "#")
                {
                    filters.Add(l1 + "/" + l2 + "/#");
                }
            }
        }

        foreach (var l1 in levels)
        {
            topics.Add(l1);
            foreach (var l2 in levels)
            {
                topics.Add(l1 + "/" + l2);
                topics.Add(l1 + "/" + l2 + "/c");
            }
        }

        var random = new Random(12345);
        for (int round = 0; round < 40; round++)
        {
            var chosen = filters.OrderBy(_ => random.Next()).Take(random.Next(1, 8)).ToList();
            var deny = chosen.Where((_, i) => i % 3 == 2).ToHashSet();
            var trie = new TopicTrie(trackRules: false);
            foreach (var f in chosen)
            {
                trie.Add(f, deny.Contains(f) ? TopicTrie.ReceiveDeny : TopicTrie.ReceiveAllow, null!);
            }

            var frozen = new TopicTrie(trackRules: false);
            foreach (var f in chosen)
            {
                frozen.Add(f, deny.Contains(f) ? TopicTrie.ReceiveDeny : TopicTrie.ReceiveAllow, null!);
            }

            frozen.Freeze();
            foreach (var topic in topics.Where(t => MqttTopic.IsValidTopicName(t)))
            {
                int expected = 0;
                foreach (var f in chosen)
                {
                    bool isDeny = deny.Contains(f);
                    // A deny's leading wildcard also reaches '$' topics (fail closed); a grant's does not [MQTT-4.7.2-1].
                    if (isDeny ? MqttTopic.MatchesLevels(f, topic) : MqttTopic.Matches(f, topic))
                    {
                        expected |= isDeny ? TopicTrie.ReceiveDeny : TopicTrie.ReceiveAllow;
                    }
                }

                trie.Match(topic).Should().Be(expected, $"topic '{topic}' against [{string.Join(", ", chosen)}] (deny: {string.Join(", ", deny)})");
                frozen.Match(topic).Should().Be(expected, $"frozen: topic '{topic}' against [{string.Join(", ", chosen)}]");
            }
        }
    }
}
