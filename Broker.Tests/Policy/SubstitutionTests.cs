using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using OmniBroker.Policy.Compilation;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class SubstitutionTests
{
    private static CompiledPolicy OwnTopicPolicy(string template, string extra = "") => TestPolicy.Compile($$"""
        {{TestPolicy.Extensions}}
        rules:
          - id: own
            effect: allow
            actions: [publish, subscribe, receive]
            topics:
              - "{{template}}"
        {{extra}}
        """);

    private static PolicyTestCerts.Spec WithCn(string cn) => new()
    {
        Subject = [("2.5.4.10", "Acme"), ("2.5.4.11", "sensors"), ("2.5.4.3", cn)],
    };

    [Fact]
    public void Template_OrdinaryValue_GrantsOwnTopicOnly()
    {
        var grants = OwnTopicPolicy("devices/${cert.cn}/telemetry").Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("devices/sensor-001/telemetry", MqttQos.AtLeastOnce, false).Should().BeTrue();
        grants.CanPublish("devices/sensor-002/telemetry", MqttQos.AtLeastOnce, false).Should().BeFalse();
        grants.CanSubscribe("devices/sensor-001/telemetry").Should().BeTrue();
        grants.CanSubscribe("devices/+/telemetry").Should().BeFalse();
    }

    [Theory]
    [InlineData("a/b")]   // would grant devices/a/b/telemetry: a different shape of topic
    [InlineData("+")]     // would grant every device's telemetry
    [InlineData("#")]     // would grant everything under devices/
    [InlineData("x+y")]
    [InlineData("x#")]
    [InlineData("")]      // would grant devices//telemetry
    public void Template_UnsafeValue_GrantsNothing(string cn)
    {
        var certificate = PolicyTestCerts.Create(WithCn(cn));
        var grants = OwnTopicPolicy("devices/${cert.cn}/telemetry").Grants(certificate);

        foreach (var topic in new[] { "devices/a/b/telemetry", "devices/+/telemetry", "devices/x/telemetry", "devices//telemetry", "devices/#" })
        {
            grants.CanPublish(topic, MqttQos.AtMostOnce, false).Should().BeFalse(topic);
            grants.CanReceive(topic).Should().BeFalse(topic);
            grants.CanSubscribe(topic).Should().BeFalse(topic);
        }

        grants.CanSubscribe("#").Should().BeFalse();
    }

    [Fact]
    public void Template_AbsentAttribute_RuleDoesNotApply()
    {
        // Sensor001 has no ST; the rule must not turn into devices//telemetry or devices/+/telemetry.
        var grants = OwnTopicPolicy("devices/${cert.st}/telemetry").Grants(PolicyTestCerts.Sensor001);

        grants.CanPublish("devices//telemetry", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanSubscribe("devices/+/telemetry").Should().BeFalse();
        grants.CanReceive("devices/berlin/telemetry").Should().BeFalse();
    }

    [Fact]
    public void Template_InsideLevel_UnsafePartRejected()
    {
        var policy = OwnTopicPolicy("devices/id-${cert.cn}/x");

        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("devices/id-sensor-001/x", MqttQos.AtMostOnce, false).Should().BeTrue();
        var weird = policy.Grants(PolicyTestCerts.Create(WithCn("a/b")));
        weird.CanPublish("devices/id-a/b/x", MqttQos.AtMostOnce, false).Should().BeFalse();
    }

    [Fact]
    public void Template_DollarValueAtTopicStart_IsRejected()
    {
        // "${cert.cn}/data" with CN "$SYS" would otherwise reach the broker's own topics.
        var policy = OwnTopicPolicy("${cert.cn}/#");

        policy.Grants(PolicyTestCerts.Create(WithCn("$SYS"))).CanSubscribe("$SYS/#").Should().BeFalse();
        policy.Grants(PolicyTestCerts.Create(WithCn("$SYS"))).CanReceive("$SYS/broker/uptime").Should().BeFalse();
        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("sensor-001/data", MqttQos.AtMostOnce, false).Should().BeTrue();

        // Elsewhere in the topic a '$' is an ordinary character.
        OwnTopicPolicy("devices/${cert.cn}").Grants(PolicyTestCerts.Create(WithCn("$x"))).CanPublish("devices/$x", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void Template_MultiValuedAttribute_GrantsEachValue()
    {
        var certificate = PolicyTestCerts.Create(new PolicyTestCerts.Spec
        {
            Subject = [("2.5.4.11", "sensors"), ("2.5.4.11", "trial/x"), ("2.5.4.11", "lab"), ("2.5.4.3", "d1")],
        });
        var grants = OwnTopicPolicy("teams/${cert.ou}/${cert.cn}").Grants(certificate);

        grants.CanPublish("teams/sensors/d1", MqttQos.AtMostOnce, false).Should().BeTrue();
        grants.CanPublish("teams/lab/d1", MqttQos.AtMostOnce, false).Should().BeTrue();
        grants.CanPublish("teams/trial/x/d1", MqttQos.AtMostOnce, false).Should().BeFalse(); // the unsafe value is skipped
        grants.CanPublish("teams/other/d1", MqttQos.AtMostOnce, false).Should().BeFalse();
    }

    [Fact]
    public void Template_SanUriAndExtensionAndClientId_Substitute()
    {
        var policy = TestPolicy.Compile($$"""
            {{TestPolicy.Extensions}}
            rules:
              - id: vars
                effect: allow
                actions: [publish]
                topics:
                  - "uri/${cert.san.uri}"
                  - "type/${cert.ext.deviceType}/${cert.serial}"
                  - "clients/${client.id}/state"
                  - "orgs/${cert.o}/${cert.l}"
            """);
        var backend = policy.Grants(PolicyTestCerts.BackendTelemetry, "backend-telemetry-2");
        var serial = new OmniBroker.Policy.Certificates.AttributeRef(OmniBroker.Policy.Certificates.AttributeKind.Serial, "cert.serial");
        var serialValue = OmniBroker.Policy.Certificates.ClientAttributes.From(PolicyTestCerts.BackendTelemetry, null).Get(serial).Single();

        backend.CanPublish("uri/urn:device:backend-telemetry", MqttQos.AtMostOnce, false).Should().BeTrue();
        backend.CanPublish("uri/spiffe://acme/backend/telemetry", MqttQos.AtMostOnce, false).Should().BeFalse(); // holds '/': skipped
        backend.CanPublish($"type/service/{serialValue}", MqttQos.AtMostOnce, false).Should().BeTrue();
        backend.CanPublish("clients/backend-telemetry-2/state", MqttQos.AtMostOnce, false).Should().BeTrue();
        backend.CanPublish("orgs/Acme/berlin", MqttQos.AtMostOnce, false).Should().BeFalse(); // no L on the backend cert

        // A client id is client-chosen: one with wildcards grants nothing.
        policy.Grants(PolicyTestCerts.BackendTelemetry, "+").CanPublish("clients/x/state", MqttQos.AtMostOnce, false).Should().BeFalse();
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("+")]
    [InlineData("")]
    public void DenyTemplate_UnsafeValue_FailsClosed(string cn)
    {
        // The deny cannot be substituted: its level becomes '+', so it still covers what it was written for.
        var policy = TestPolicy.Compile("""
            rules:
              - id: config-all
                effect: allow
                actions: [publish, subscribe, receive]
                topics: ["config/#"]
              - id: no-own-secrets
                effect: deny
                actions: [publish, subscribe, receive]
                topics: ["config/${cert.cn}/secrets"]
            """);
        var grants = policy.Grants(PolicyTestCerts.Create(WithCn(cn)));

        grants.CanPublish("config/anything/secrets", MqttQos.AtMostOnce, false).Should().BeFalse();
        grants.CanReceive("config/anything/secrets").Should().BeFalse();
        grants.CanSubscribe("config/anything/secrets").Should().BeFalse();
        // Wider than the deny: granted, with every config/+/secrets withheld at delivery.
        grants.CanSubscribe("config/#").Should().BeTrue();
        grants.CanPublish("config/anything/public", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void DenyTemplate_AbsentAttribute_FailsClosed()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [publish]
                topics: ["#"]
              - id: not-own-state
                effect: deny
                actions: [publish]
                topics: ["state/${cert.st}/locked"]
            """);

        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("state/anything/locked", MqttQos.AtMostOnce, false).Should().BeFalse();
        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("state/anything/open", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void ConditionTemplate_BindsSanToCommonName()
    {
        var policy = TestPolicy.MatchPolicy("cert.san.uri", "\"urn:device:${cert.cn}\"");
        var mismatched = PolicyTestCerts.Create(new PolicyTestCerts.Spec
        {
            Subject = [("2.5.4.3", "sensor-001")],
            Uris = ["urn:device:sensor-999"],
        });

        policy.Matches(PolicyTestCerts.Sensor001).Should().BeTrue();
        policy.Matches(mismatched).Should().BeFalse();
    }

    [Fact]
    public void ConditionTemplate_InDenyWithAbsentValue_FailsClosed()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: all
                effect: allow
                actions: [publish]
                topics: ["#"]
              - id: odd
                effect: deny
                actions: [publish]
                match:
                  cert.o: "${cert.st}"
                topics: ["#"]
            """);

        // Sensor001 has no ST: the deny's condition cannot be evaluated, so it holds.
        policy.Grants(PolicyTestCerts.Sensor001).CanPublish("a", MqttQos.AtMostOnce, false).Should().BeFalse();
    }
}
