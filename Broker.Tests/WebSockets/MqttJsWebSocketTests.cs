using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Globalization;
using System.Net.WebSockets;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.WebSockets;

/// <summary>
/// MQTT.js (the npm mqtt package) in Node over wss with development-PKI device certificates, against the in-process
/// host, with mosquitto-clients on the MQTT over TLS listener: one broker, one identity, two transports.
/// </summary>
public sealed class MqttJsWebSocketTests
{
    [Theory]
    [InlineData(5)]
    [InlineData(4)]
    public async Task MqttJs_WssAndTcpClients_MessagesCrossTransportsBothWays(int protocolVersion)
    {
        await using var broker = await TestBroker.StartAsync();
        using var sensor = DevDevice.Of(broker, "sensor-001");
        using var backend = DevDevice.Of(broker, "backend-telemetry");

        await using var wss = await MqttJsClient.StartAsync(broker.WebSocketUrl(), sensor.CaPath, sensor.CertificatePath, sensor.KeyPath, "sensor-001", protocolVersion);
        await wss.WaitForAsync("connected");
        await wss.SubscribeAsync("devices/sensor-001/commands/#", qos: 1);
        var subscribed = await wss.WaitForAsync("subscribed");
        subscribed.GetProperty("granted")[0].GetInt32().Should().Be(1, "the policy lets a sensor read its own commands");

        // The engine sees the wss client like any other, with its certificate.
        var client = broker.App.Services.GetRequiredService<MqttBroker>().GetConnectedClients().Should().ContainSingle(c => c.ClientId == "sensor-001").Subject;
        client.Certificate!.Subject.Should().Be(sensor.Certificate.Subject);

        // wss -> TCP: a mosquitto_sub on the TLS listener receives the sensor's telemetry.
        // stdbuf: mosquitto_sub's stdout is a pipe here, line buffering lets the SUBACK line through at once.
        using var subscriber = Start("stdbuf", ["-oL", "mosquitto_sub", .. Tcp(broker, backend), "-i", "backend-telemetry-wss", "-t", "devices/sensor-001/telemetry", "-q", "1", "-v", "-d", "-C", "1", "-W", "20"]);
        var lines = new List<string>();
        while (await subscriber.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)) is { } line)
        {
            lines.Add(line);
            if (line.Contains("SUBACK", StringComparison.Ordinal))
            {
                break;
            }
        }
        lines.Should().Contain(l => l.Contains("SUBACK", StringComparison.Ordinal), "mosquitto_sub must be subscribed before the publish: {0}", string.Join(" | ", lines));

        await wss.PublishAsync("devices/sensor-001/telemetry", $"from-wss-v{protocolVersion}", qos: 1);
        await wss.WaitForAsync("published");
        var rest = await subscriber.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(20));
        rest.Should().Contain($"devices/sensor-001/telemetry from-wss-v{protocolVersion}", await subscriber.StandardError.ReadToEndAsync());

        // TCP -> wss: the backend's command published by mosquitto_pub arrives at the MQTT.js subscriber.
        using (var publisher = Start("mosquitto_pub", [.. Tcp(broker, backend), "-i", "backend-telemetry-cmd", "-t", "devices/sensor-001/commands/reboot", "-m", $"from-tcp-v{protocolVersion}", "-q", "1"]))
        {
            var error = await publisher.StandardError.ReadToEndAsync();
            await publisher.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            publisher.ExitCode.Should().Be(0, error);
        }
        var message = await wss.WaitForAsync("message");
        message.GetProperty("topic").GetString().Should().Be("devices/sensor-001/commands/reboot");
        message.GetProperty("payload").GetString().Should().Be($"from-tcp-v{protocolVersion}");

        // MQTT.js ends with DISCONNECT: the broker answers with a normal WebSocket closure.
        await wss.EndAsync();
        await wss.WaitForAsync("ended");
        var closed = await broker.Logs.WaitForAsync(e => e.EventId.Id == 6105);
        closed.Value("CloseStatus").Should().Be(nameof(WebSocketCloseStatus.NormalClosure), closed.Message);
        closed.Value("CloseDescription").Should().Be("MQTT DISCONNECT from the client");
    }

    [Fact]
    public async Task MqttJs_UntrustedCertificate_RefusedOnWssForTheSameReasonAsOnTcp()
    {
        await using var broker = await TestBroker.StartAsync();
        using var sensor = DevDevice.Of(broker, "sensor-001");
        using var other = TestPki.Create();
        var directory = TempDirectory.Create("omnibroker-wss-intruder");
        try
        {
            var leaf = other.IssueLeaf("intruder");
            var certificate = Path.Combine(directory, "intruder.crt");
            var key = Path.Combine(directory, "intruder.key");
            File.WriteAllText(certificate, leaf.ExportCertificatePem() + "\n" + other.Intermediate.ExportCertificatePem() + "\n");
            File.WriteAllText(key, leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n");

            var tcp = await TlsTestClient.ConnectAsync(broker.MqttPort, sensor.Root, leaf, [other.Intermediate]);
            tcp.Outcome.Should().NotBe(TlsClientOutcome.ConnAck);
            var tcpRefusal = await broker.Logs.WaitForAsync(e => e.EventId.Id == 2001 && e.Value("Serial") == leaf.SerialNumber);

            await using (var wss = await MqttJsClient.StartAsync(broker.WebSocketUrl(), sensor.CaPath, certificate, key, "intruder"))
            {
                var error = await wss.WaitForAsync("error");
                await wss.WaitForAsync("close", failOnError: false);
                wss.SeenEvents.Should().NotContain("connected", "error: {0}", error);
            }
            var refusals = await WaitForCountAsync(broker, e => e.EventId.Id == 2001 && e.Value("Serial") == leaf.SerialNumber, 2);

            tcpRefusal.Value("Reason").Should().Be("untrusted");
            refusals.Select(r => r.Value("Reason")).Should().AllBe("untrusted", "one code path decides identity for both listeners");
            refusals.Select(r => r.Level).Should().AllBeEquivalentTo(tcpRefusal.Level);
            broker.App.Services.GetRequiredService<MqttBroker>().GetConnectedClients().Should().BeEmpty();
        }
        finally
        {
            TempDirectory.Delete(directory);
        }
    }

    [Fact]
    public async Task MqttJs_ClientIdRefusedByPolicy_ConnAckNotAuthorizedOverWss()
    {
        await using var broker = await TestBroker.StartAsync();
        using var sensor = DevDevice.Of(broker, "sensor-001");

        await using var wss = await MqttJsClient.StartAsync(broker.WebSocketUrl(), sensor.CaPath, sensor.CertificatePath, sensor.KeyPath, "sensor-002");
        var error = await wss.WaitForAsync("error");

        // MQTT.js reports the CONNACK reason code: 0x87 Not authorized, as on the TLS listener.
        error.GetProperty("code").GetInt32().Should().Be(0x87, error.ToString());
        var closed = await broker.Logs.WaitForAsync(e => e.EventId.Id == 6105);
        // MQTT.js destroys its socket as soon as it reads the refusing CONNACK: on a loaded machine that can beat the
        // broker's Close frame, and then there is no close to report (seen once in CI). When the broker's Close went
        // out, it mirrors the refusal.
        if (closed.Value("CloseStatus") is { } status)
        {
            status.Should().Be(nameof(WebSocketCloseStatus.PolicyViolation), closed.Message);
        }
    }

    private static async Task<IReadOnlyList<CapturedLog>> WaitForCountAsync(TestBroker broker, Func<CapturedLog, bool> predicate, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var matches = broker.Logs.Entries.Where(predicate).ToList();
            if (matches.Count >= count || DateTime.UtcNow > deadline)
            {
                matches.Should().HaveCount(count, "captured:\n" + string.Join("\n", broker.Logs.Entries.Where(e => e.EventId.Id is 2001 or >= 6100)));
                return matches;
            }
            await Task.Delay(20);
        }
    }

    private static string[] Tcp(TestBroker broker, DevDevice device) =>
        ["-h", "127.0.0.1", "-p", broker.MqttPort.ToString(CultureInfo.InvariantCulture), "--cafile", device.CaPath,
         "--cert", device.CertificatePath, "--key", device.KeyPath, "-V", "mqttv5"];

    private static Process Start(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
    }
}
