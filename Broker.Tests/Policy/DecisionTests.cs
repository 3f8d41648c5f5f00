using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class DecisionTests
{
    [Fact]
    public void Deny_InAnotherFile_WinsOverAllow_WhateverTheOrder()
    {
        const string allow = """
            rules:
              - id: broad
                effect: allow
                actions: [publish, subscribe, receive]
                topics: ["#"]
            """;
        const string deny = """
            rules:
              - id: no-firmware
                effect: deny
                actions: [publish]
                topics: ["firmware/#"]
            """;

        foreach (var files in new[] { new[] { ("a.yaml", allow), ("b.yaml", deny) }, new[] { ("a.yaml", deny), ("b.yaml", allow) } })
        {
            var policy = TestPolicy.Compile(files);
            var grants = policy.Grants(PolicyTestCerts.Sensor001);

            grants.CanPublish("firmware/v2", MqttQos.AtMostOnce, false).Should().BeFalse();
            grants.CanPublish("firmware", MqttQos.AtMostOnce, false).Should().BeFalse();
            grants.CanPublish("other/v2", MqttQos.AtMostOnce, false).Should().BeTrue();
            grants.CanReceive("firmware/v2").Should().BeTrue(); // the deny names publish only

            var explained = policy.Explain(PolicyTestCerts.Sensor001, PolicyAction.Publish, "firmware/v2");
            explained.Allowed.Should().BeFalse();
            explained.DecidingRule!.Id.Should().Be("no-firmware");
            explained.MatchingRules.Select(r => r.Id).Should().BeEquivalentTo(["broad", "no-firmware"]);
        }
    }

    [Fact]
    public void NothingAllows_DefaultDeny()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: gateways-only
                effect: allow
                actions: [connect, publish]
                match:
                  cert.ou: gateways
                topics: ["sites/#"]
            """);

        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("sites/berlin", MqttQos.AtMostOnce, false).Should().BeFalse();
        var connect = policy.Connect(PolicyTestCerts.Sensor001, "sensor-001");
        connect.Allowed.Should().BeFalse();
        connect.Reason.Should().Contain("default deny");
        var explained = policy.Explain(PolicyTestCerts.Sensor001, PolicyAction.Publish, "sites/berlin");
        explained.DecidingRule.Should().BeNull();
        explained.Explanation.Should().Be("no rule allows: default deny");
    }

    [Fact]
    public void ConnectDeny_WinsOverConnectAllow()
    {
        var policy = TestPolicy.Compile($$"""
            {{TestPolicy.Extensions}}
            rules:
              - id: acme
                effect: allow
                actions: [connect]
                match: { cert.o: Acme }
              - id: decommissioned
                effect: deny
                actions: [connect]
                match: { cert.ext.deviceType: legacy-thermostat }
            """);

        policy.Connect(PolicyTestCerts.Sensor001, "x").Allowed.Should().BeTrue();
        var legacy = policy.Connect(PolicyTestCerts.Legacy001, "legacy-001");
        legacy.Allowed.Should().BeFalse();
        legacy.Grants.Should().BeNull();
        legacy.Reason.Should().Contain("decommissioned").And.Contain("test.yaml:");
    }

    [Fact]
    public void Receive_DeniedPerTopic_AtDelivery()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: read
                effect: allow
                actions: [subscribe, receive]
                topics: ["telemetry/#"]
              - id: hide-private
                effect: deny
                actions: [receive]
                topics: ["telemetry/+/private"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanSubscribe("telemetry/#").Should().BeTrue(); // the deny is on receive, not subscribe
        grants.CanReceive("telemetry/d1/public").Should().BeTrue();
        grants.CanReceive("telemetry/d1/private").Should().BeFalse();
    }

    [Theory]
    [InlineData(MqttQos.AtMostOnce, false, true)]
    [InlineData(MqttQos.AtLeastOnce, false, true)]
    [InlineData(MqttQos.ExactlyOnce, false, false)] // maxQos: 1
    [InlineData(MqttQos.AtMostOnce, true, false)]   // retain: false
    [InlineData(MqttQos.AtLeastOnce, true, false)]
    public void Publish_MaxQosAndRetainConditions(MqttQos qos, bool retain, bool expected)
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: telemetry
                effect: allow
                actions: [publish]
                topics: [t]
                maxQos: 1
                retain: false
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("t", qos, retain).Should().Be(expected);
    }

    [Fact]
    public void Publish_QosListAndRetainTrue_CombineAcrossRules()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: qos-0-2
                effect: allow
                actions: [publish]
                topics: [t]
                qos: [0, 2]
              - id: retained-only-qos1
                effect: allow
                actions: [publish]
                topics: [t]
                qos: 1
                retain: true
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("t", MqttQos.AtMostOnce, false).Should().BeTrue();
        grants.CanPublish("t", MqttQos.ExactlyOnce, true).Should().BeTrue();
        grants.CanPublish("t", MqttQos.AtLeastOnce, false).Should().BeFalse();
        grants.CanPublish("t", MqttQos.AtLeastOnce, true).Should().BeTrue();
        grants.CanPublish("t", (MqttQos)3, false).Should().BeFalse();
    }

    [Fact]
    public void Publish_DenyWithRetainCondition_DeniesOnlyRetained()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [publish]
                topics: ["#"]
              - id: no-retained-commands
                effect: deny
                actions: [publish]
                topics: ["commands/#"]
                retain: true
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("commands/reboot", MqttQos.AtLeastOnce, false).Should().BeTrue();
        grants.CanPublish("commands/reboot", MqttQos.AtLeastOnce, true).Should().BeFalse();
        grants.CanPublish("other", MqttQos.AtLeastOnce, true).Should().BeTrue();
    }

    [Fact]
    public void Publish_InvalidTopicName_IsDenied()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [publish, receive]
                topics: ["#"]
            """).Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("a/+", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanPublish("a/#", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanPublish("", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanReceive("a/+").Should().BeFalse();
        grants.CanPublish("a/b", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void ClientId_BoundToCommonName_PreventsSessionTakeover()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: sensors-connect
                effect: allow
                actions: [connect]
                match: { cert.ou: sensors }
                clientId: ${cert.cn}
            """);

        policy.Connect(PolicyTestCerts.Sensor001, "sensor-001").Allowed.Should().BeTrue();
        var takeover = policy.Connect(PolicyTestCerts.Sensor001, "sensor-002");
        takeover.Allowed.Should().BeFalse();
        takeover.Reason.Should().Contain("default deny");
        policy.Connect(PolicyTestCerts.Sensor002, "sensor-002").Allowed.Should().BeTrue();
        policy.Connect(PolicyTestCerts.Sensor001, "").Allowed.Should().BeFalse();
    }

    [Fact]
    public void ClientId_PrefixAndGlob_Conditions()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: backend
                effect: allow
                actions: [connect]
                match: { cert.ou: backend }
                clientId: { prefix: "${cert.cn}" }
              - id: tools
                effect: allow
                actions: [connect]
                match: { cert.ou: sensors }
                clientId: { glob: "tool-*" }
            """);

        policy.Connect(PolicyTestCerts.BackendTelemetry, "backend-telemetry").Allowed.Should().BeTrue();
        policy.Connect(PolicyTestCerts.BackendTelemetry, "backend-telemetry-2").Allowed.Should().BeTrue();
        policy.Connect(PolicyTestCerts.BackendTelemetry, "sensor-001").Allowed.Should().BeFalse();
        policy.Connect(PolicyTestCerts.Sensor001, "tool-7").Allowed.Should().BeTrue();
        policy.Connect(PolicyTestCerts.Sensor001, "sensor-001").Allowed.Should().BeFalse();
    }

    [Fact]
    public void ClientId_OnTopicRule_LimitsGrant()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: debug
                effect: allow
                actions: [publish]
                clientId: { prefix: debug- }
                topics: ["debug/#"]
            """);

        grants.Grants(PolicyTestCerts.Sensor001, "debug-1").CanPublish("debug/x", MqttQos.AtMostOnce, false).Should().BeTrue();
        grants.Grants(PolicyTestCerts.Sensor001, "sensor-001").CanPublish("debug/x", MqttQos.AtMostOnce, false).Should().BeFalse();
    }

    [Fact]
    public void Admin_IsAnAction_OfItsOwn()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: ops
                effect: allow
                actions: [admin]
                match: { cert.ou: backend }
              - id: everyone-connects
                effect: allow
                actions: [connect]
            """);

        policy.Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Admin).Allowed.Should().BeTrue();
        policy.Explain(PolicyTestCerts.Sensor001, PolicyAction.Admin).Allowed.Should().BeFalse();
        policy.Explain(PolicyTestCerts.Sensor001, PolicyAction.Connect, clientId: "x").DecidingRule!.Id.Should().Be("everyone-connects");
    }

    [Fact]
    public void Grants_RepeatedTopic_AllocateNothing()
    {
        var grants = TestPolicy.Compile("""
            rules:
              - id: own
                effect: allow
                actions: [publish, receive]
                topics: ["devices/${cert.cn}/telemetry", "devices/+/status", "firmware/#"]
            """).Grants(PolicyTestCerts.Sensor001);
        var topic = new string("devices/sensor-001/telemetry".AsSpan()); // a fresh instance, as a decoder would give
        var other = new string("devices/x/status".AsSpan());
        grants.CanPublish(topic, MqttQos.AtLeastOnce, false).Should().BeTrue();
        grants.CanReceive(other).Should().BeTrue();

        long before = GC.GetAllocatedBytesForCurrentThread();
        bool all = true;
        for (int i = 0; i < 1000; i++)
        {
            all &= grants.CanPublish(topic, MqttQos.AtLeastOnce, false);
            all &= grants.CanReceive(other);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        all.Should().BeTrue();
        allocated.Should().Be(0);
    }
}
