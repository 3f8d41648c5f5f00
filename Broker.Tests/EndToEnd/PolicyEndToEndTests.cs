using System.Text.Json.Nodes;
using FluentAssertions;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// The example policies (policies/*.yaml, docs/policies.md) enforced end to end: the development PKI's device
/// certificates, Eclipse Paho for Python over mutual TLS, MQTT 3.1.1 and 5.0. The devices' client ids are fixed by
/// the policy, so these tests run one after the other (one class) and tell their messages apart by payload.
/// </summary>
public sealed class PolicyEndToEndTests(DevelopmentPkiBroker broker) : IClassFixture<DevelopmentPkiBroker>
{
    private const int NotAuthorizedV5 = 0x87;
    private const int NotAuthorizedV311 = 0x05;
    private const int SubscribeFailureV311 = 0x80;

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Sensor_PublishesToAnotherSensorsTelemetry_NotDeliveredToBackend(string version)
    {
        var forged = "forged-" + Guid.NewGuid().ToString("N");
        var genuine = "genuine-" + Guid.NewGuid().ToString("N");
        var backend = PahoClient("backend-telemetry-e2e-" + Guid.NewGuid().ToString("N")[..8], broker.Device("backend-telemetry"));
        backend["filters"] = new object[] { new object[] { "devices/+/telemetry", 1 } };
        var spec = broker.PahoSpec(version);
        spec["subscribers"] = new object[] { backend };
        spec["publisher"] = PahoClient("sensor-001", broker.Device("sensor-001"));
        // Same connection, in order: had the forged message been delivered, it would arrive before the genuine one.
        spec["messages"] = new object[]
        {
            new Dictionary<string, object?> { ["topic"] = "devices/sensor-002/telemetry", ["payload"] = forged, ["qos"] = 1 },
            new Dictionary<string, object?> { ["topic"] = "devices/sensor-001/telemetry", ["payload"] = genuine, ["qos"] = 1 },
        };
        spec["expect"] = 1;

        var (result, process) = await RunPahoAsync("pubsub.py", spec);

        process.ExitCode.Should().Be(0, process.ToString());
        var subscriber = result["subscribers"]!.AsObject().Single().Value!;
        subscriber["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(1);
        subscriber["messages"]!.AsArray().Select(m => $"{(string?)m!["topic"]} {(string?)m["payload"]}")
            .Should().Equal($"devices/sensor-001/telemetry {genuine}");
        var acks = result["publisher"]!["acks"]!.AsArray().Select(a => (int?)a).ToArray();
        // 3.1.1 has no negative PUBACK: the broker acknowledges and drops the message.
        acks.Should().Equal(version == "5" ? [NotAuthorizedV5, 0] : [0, 0]);
        // Denials are logged aggregated per client (1106, AggregatedLog): the first one at once, the rest per interval.
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1106 && e.Value("ClientId") == "sensor-001"
            && e.Value("Reason") == "publish_denied" && e.Value("Topic") == "devices/sensor-002/telemetry");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Sensor_SubscribesToOwnAndAnotherSensorsCommands_OnlyOwnGranted(string version)
    {
        var result = await ProbeAsync(version, "sensor-001", "sensor-001", subscribe: new object[]
        {
            new object[] { "devices/sensor-001/commands/#", 1 },
            new object[] { "devices/sensor-002/commands/#", 1 },
        });

        ((int?)result["connack"]).Should().Be(0);
        result["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(1, version == "5" ? NotAuthorizedV5 : SubscribeFailureV311);
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Sensor_ConnectsWithAnotherDevicesClientId_Refused(string version)
    {
        var own = await ProbeAsync(version, "sensor-001", "sensor-001");
        var other = await ProbeAsync(version, "sensor-001", "sensor-002");

        ((int?)own["connack"]).Should().Be(0, "the certificate's CN is the client id the policy binds");
        ((int?)other["connack"]).Should().Be(version == "5" ? NotAuthorizedV5 : NotAuthorizedV311);
        ((bool?)other["closed"]).Should().BeTrue("the broker closes the connection after a refusing CONNACK");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task DecommissionedLegacyDevice_Connects_Refused(string version)
    {
        var result = await ProbeAsync(version, "legacy-001", "legacy-001");

        ((int?)result["connack"]).Should().Be(version == "5" ? NotAuthorizedV5 : NotAuthorizedV311);
        ((bool?)result["closed"]).Should().BeTrue();
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1001 && e.Value("ClientId") == "legacy-001");
    }

    private async Task<JsonObject> ProbeAsync(string version, string device, string clientId, object[]? subscribe = null)
    {
        var spec = broker.PahoSpec(version);
        spec["client"] = PahoClient(clientId, broker.Device(device));
        if (subscribe is not null)
        {
            spec["subscribe"] = subscribe;
        }
        var (result, process) = await RunPahoAsync("probe.py", spec);
        process.ExitCode.Should().Be(0, process.ToString());
        return result;
    }
}
