using FluentAssertions;
using OmniBroker.Auth.Pki;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

/// <summary>The shipped policies/ against the certificates the real development PKI issues (not test-made ones):
/// both sides must agree on subjects, SAN URIs and the device-type extension.</summary>
public class DevelopmentPkiPolicyTests
{
    [Fact]
    public void DefaultDevices_OfDevelopmentPki_AreDecidedAsDocumented()
    {
        using var dir = new TempDirectory();
        using var pki = DevelopmentPki.Create(Path.Combine(dir.Path, "pki"), new Uri("http://127.0.0.1:8080/"));
        var policy = PolicyAuthorizer.Load(TestPolicy.RepositoryPolicies());

        ConnectDecision Connect(string cn, string? clientId = null)
        {
            var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
                File.ReadAllText(Path.Combine(pki.Directory, DevelopmentPki.DevicesDirectory, cn + ".crt")));
            return policy.AuthorizeConnect(new MqttClientInfo(clientId ?? cn, MqttProtocolVersion.V500, certificate, null, null));
        }

        var sensor = Connect("sensor-001");
        sensor.Allowed.Should().BeTrue(sensor.Reason);
        sensor.Grants!.CanPublish("devices/sensor-001/telemetry", MqttQos.AtLeastOnce, false).Should().BeTrue();
        Connect("sensor-001", "sensor-002").Allowed.Should().BeFalse();
        Connect("sensor-002").Grants!.CanSubscribe("devices/sensor-002/commands/#").Should().BeTrue();

        var gateway = Connect("gw-berlin");
        gateway.Allowed.Should().BeTrue(gateway.Reason);
        gateway.Grants!.CanPublish("sites/berlin/sensor-001/telemetry", MqttQos.AtLeastOnce, false).Should().BeTrue();
        gateway.Grants.CanPublish("sites/munich/sensor-002/telemetry", MqttQos.AtLeastOnce, false).Should().BeFalse();

        var backend = Connect("backend-telemetry");
        backend.Allowed.Should().BeTrue(backend.Reason);
        backend.Grants!.CanSubscribe("devices/+/telemetry").Should().BeTrue();
        backend.Grants.CanPublish("devices/sensor-001/commands/reboot", MqttQos.AtLeastOnce, false).Should().BeTrue();

        var legacy = Connect("legacy-001");
        legacy.Allowed.Should().BeFalse();
        legacy.Reason.Should().Contain("legacy-thermostats-decommissioned");
    }
}
