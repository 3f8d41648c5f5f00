using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

/// <summary>The shipped policies/ against the development fleet's certificates.</summary>
public class ExamplePolicyTests
{
    private static readonly PolicyAuthorizer s_policy = PolicyAuthorizer.Load(TestPolicy.RepositoryPolicies());

    private static PolicyDecision Explain(System.Security.Cryptography.X509Certificates.X509Certificate2 cert, PolicyAction action, string? topic = null, MqttQos qos = MqttQos.AtMostOnce, bool retain = false, string? clientId = null) =>
        s_policy.Explain(new PolicyQuery(cert, clientId, action, topic, qos, retain));

    [Fact]
    public void Fleet_Connect()
    {
        Explain(PolicyTestCerts.Sensor001, PolicyAction.Connect, clientId: "sensor-001").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.Sensor001, PolicyAction.Connect, clientId: "sensor-002").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.Sensor002, PolicyAction.Connect, clientId: "sensor-002").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Connect, clientId: "gw-berlin").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Connect, clientId: "gw-munich").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Connect, clientId: "backend-telemetry-2").Allowed.Should().BeTrue();

        var legacy = Explain(PolicyTestCerts.Legacy001, PolicyAction.Connect, clientId: "legacy-001");
        legacy.Allowed.Should().BeFalse();
        legacy.DecidingRule!.Id.Should().Be("legacy-thermostats-decommissioned");
        legacy.DecidingRule.File.Should().EndWith("decommissioned.yaml");
    }

    [Fact]
    public void Sensors_OwnTelemetryAndCommandsOnly()
    {
        var s1 = s_policy.AuthorizeConnect(new("sensor-001", MqttProtocolVersion.V500, PolicyTestCerts.Sensor001, null, null)).Grants!;

        s1.CanPublish("devices/sensor-001/telemetry", MqttQos.AtLeastOnce, false).Should().BeTrue();
        s1.CanPublish("devices/sensor-001/telemetry", MqttQos.ExactlyOnce, false).Should().BeFalse();
        s1.CanPublish("devices/sensor-001/telemetry", MqttQos.AtMostOnce, true).Should().BeFalse();
        s1.CanPublish("devices/sensor-001/status", MqttQos.AtLeastOnce, true).Should().BeTrue();
        s1.CanPublish("devices/sensor-002/telemetry", MqttQos.AtMostOnce, false).Should().BeFalse();
        s1.CanSubscribe("devices/sensor-001/commands/#").Should().BeTrue();
        s1.CanSubscribe("devices/sensor-001/commands/reboot").Should().BeTrue();
        s1.CanSubscribe("devices/+/commands/#").Should().BeFalse();
        s1.CanReceive("devices/sensor-001/commands/reboot").Should().BeTrue();
        s1.CanReceive("devices/sensor-002/commands/reboot").Should().BeFalse();
        s1.CanSubscribe("devices/sensor-002/commands/#").Should().BeFalse();
    }

    [Fact]
    public void Firmware_ReadOnlyForDevices()
    {
        foreach (var cert in new[] { PolicyTestCerts.Sensor001, PolicyTestCerts.GwBerlin })
        {
            Explain(cert, PolicyAction.Subscribe, "firmware/#").Allowed.Should().BeTrue();
            Explain(cert, PolicyAction.Receive, "firmware/temperature-sensor/2.1").Allowed.Should().BeTrue();
            var publish = Explain(cert, PolicyAction.Publish, "firmware/temperature-sensor/2.1");
            publish.Allowed.Should().BeFalse();
            publish.DecidingRule!.Id.Should().Be("firmware-no-device-publish");
        }

        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Publish, "firmware/x").DecidingRule.Should().BeNull(); // default deny
    }

    [Fact]
    public void Gateways_RelayOwnSiteOnly()
    {
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Publish, "sites/berlin/sensor-001/telemetry", MqttQos.AtLeastOnce).Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Subscribe, "sites/berlin/#").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Subscribe, "sites/+/#").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Publish, "sites/munich/x").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.GwBerlin, PolicyAction.Publish, "devices/sensor-001/telemetry").Allowed.Should().BeFalse();
    }

    [Fact]
    public void Backend_ReadsAllTelemetry_SendsCommands()
    {
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Subscribe, "devices/+/telemetry").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Subscribe, "$share/backend/devices/+/telemetry").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Subscribe, "devices/#").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Receive, "devices/sensor-002/telemetry").Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Publish, "devices/sensor-002/commands/reboot", MqttQos.AtLeastOnce).Allowed.Should().BeTrue();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Publish, "devices/sensor-002/commands/reboot", MqttQos.AtLeastOnce, retain: true).Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.BackendTelemetry, PolicyAction.Publish, "devices/sensor-002/telemetry").Allowed.Should().BeFalse();
        Explain(PolicyTestCerts.Sensor001, PolicyAction.Subscribe, "devices/+/telemetry").Allowed.Should().BeFalse();
    }

    [Fact]
    public void Admin_OnlyOperators()
    {
        var operatorCert = PolicyTestCerts.Device("alice", "operators", null, "person");
        s_policy.IsAllowed(operatorCert, "admin").Should().BeTrue();
        s_policy.IsAllowed(PolicyTestCerts.BackendTelemetry, "admin").Should().BeFalse();
        s_policy.IsAllowed(PolicyTestCerts.Sensor001, PolicyAction.Admin).Should().BeFalse();
    }

    [Fact]
    public void Explain_AgreesWithGrants_OnFleetAndTopics()
    {
        var certs = new[] { PolicyTestCerts.Sensor001, PolicyTestCerts.Sensor002, PolicyTestCerts.GwBerlin, PolicyTestCerts.BackendTelemetry };
        var topics = new[]
        {
            "devices/sensor-001/telemetry", "devices/sensor-002/telemetry", "devices/sensor-001/commands/x", "devices/sensor-001/status",
            "sites/berlin/a", "sites/munich/a", "firmware/x", "$SYS/x", "other",
        };
        var filters = topics.Concat(["devices/+/telemetry", "devices/#", "#", "sites/berlin/#", "firmware/#", "devices/sensor-001/commands/#"]);
        foreach (var cert in certs)
        {
            var grants = TestPolicy.Grants(((PolicyAuthorizer)s_policy).Current, cert);
            foreach (var topic in topics)
            {
                foreach (var qos in new[] { MqttQos.AtMostOnce, MqttQos.AtLeastOnce, MqttQos.ExactlyOnce })
                {
                    foreach (var retain in new[] { false, true })
                    {
                        Explain(cert, PolicyAction.Publish, topic, qos, retain).Allowed.Should().Be(grants.CanPublish(topic, qos, retain));
                    }
                }

                Explain(cert, PolicyAction.Receive, topic).Allowed.Should().Be(grants.CanReceive(topic));
            }

            foreach (var filter in filters)
            {
                var explained = Explain(cert, PolicyAction.Subscribe, filter);
                explained.Allowed.Should().Be(grants.CanSubscribe(filter));
                if (explained.Allowed)
                {
                    explained.DecidingRule.Should().NotBeNull();
                    explained.MatchedFilter.Should().NotBeNull();
                }
            }
        }
    }
}
