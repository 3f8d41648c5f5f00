using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Metrics;
using OmniBroker.Tests.Storage;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>
/// The device listeners' connection cap (Limits:MaxConnections, derived from the descriptor limit) against the real
/// host process started under a lowered RLIMIT_NOFILE (<c>prlimit</c>) and real mutual-TLS MQTT clients. Without the
/// cap such a process aborted ("Out of memory.", exit 134) once its descriptors ran out.
/// </summary>
public sealed partial class ConnectionCapTests
{
    private const int DescriptorLimit = 600;
    private const int Reserved = 128;
    private const int Excess = 25;

    private const string Policy = """
        version: 1
        rules:
          - id: cap-connect
            effect: allow
            actions: [connect]
            match:
              cert.o: Acme
        """;

    [Fact]
    public async Task Listener_MoreConnectionsThanDescriptorsAllow_RefusesExcessStaysUpAndAcceptsAfterOthersLeave()
    {
        var root = TempDirectory.Create("omnibroker-cap");
        var data = Path.Combine(root, "data");
        var policies = Path.Combine(root, "policies");
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(policies);
        await File.WriteAllTextAsync(Path.Combine(policies, "cap.yaml"), Policy);
        var port = BrokerHostProcess.FreePort();
        using var broker = await BrokerHostProcess.StartUnderAsync(["prlimit", $"--nofile={DescriptorLimit}:{DescriptorLimit}"], data, port, policies,
            $"--Limits:ReservedDescriptors={Reserved}", "--Logging:LogLevel:OmniBroker.Mqtt=Warning");
        var clients = new List<RawMqttClient>();
        try
        {
            // The cap is derived: the descriptor limit minus what is open at start minus the reserve.
            var capLine = await broker.WaitForLineAsync(l => l.Contains("[6010]", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            capLine.Should().Contain($"derived; descriptor limit {DescriptorLimit}");
            var cap = int.Parse(CapPattern().Match(capLine).Groups[1].Value, CultureInfo.InvariantCulture);
            cap.Should().BeInRange(20, DescriptorLimit - Reserved - 100, "about 200 descriptors are open at start (assemblies): {0}", capLine);
            var httpLine = await broker.WaitForLineAsync(l => l.Contains("[6001]", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            var http = new Uri($"http://{HttpPattern().Match(httpLine).Groups[1].Value}/");

            using var device = Device(data, out var trustRoot, out var chain);
            var refused = 0;
            var next = 0;
            // More devices than the cap, a few at a time: exactly `cap` are admitted, the rest are closed at accept.
            for (var batch = 0; batch < cap + Excess; batch += 8)
            {
                var outcomes = await Task.WhenAll(Enumerable.Range(0, Math.Min(8, cap + Excess - batch))
                    .Select(_ => TryConnectAsync(port, trustRoot, device, chain, $"backend-telemetry-{Interlocked.Increment(ref next)}")));
                clients.AddRange(outcomes.Where(c => c is not null)!);
                refused += outcomes.Count(c => c is null);
            }
            clients.Should().HaveCount(cap, broker.Describe());
            refused.Should().Be(Excess);
            broker.HasExited.Should().BeFalse(broker.Describe());

            broker.Output.Should().Contain(l => l.Contains("[1400]", StringComparison.Ordinal) && l.Contains("listener_connections", StringComparison.Ordinal));
            var metrics = await ScrapeAsync(http);
            metrics.Value("omnibroker_limit_hits_total", "limit=listener_connections").Should().Be(Excess);
            metrics.Value("omnibroker_listener_connections").Should().Be(cap);
            metrics.Value("omnibroker_listener_connection_limit").Should().Be(cap);

            // Ten devices leave: ten new ones get in, the next one is refused again.
            foreach (var leaving in clients.Take(10).ToList())
            {
                await leaving.DisposeAsync();
                clients.Remove(leaving);
            }
            var admitted = 0;
            for (var attempt = 0; attempt < 100 && admitted < 10; attempt++)
            {
                // A closed connection's slot is free once the broker has seen the close: retry briefly until then.
                if (await TryConnectAsync(port, trustRoot, device, chain, $"backend-telemetry-{Interlocked.Increment(ref next)}") is { } client)
                {
                    clients.Add(client);
                    admitted++;
                }
                else
                {
                    await Task.Delay(100);
                }
            }
            admitted.Should().Be(10, broker.Describe());
            (await TryConnectAsync(port, trustRoot, device, chain, "backend-telemetry-over")).Should().BeNull();
            broker.HasExited.Should().BeFalse(broker.Describe());
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
            TempDirectory.Delete(root);
        }
    }

    [Fact]
    public async Task Listeners_CapSharedByMqttAndWebSockets_WebSocketRefusedWhileMqttFull()
    {
        await using var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?> { ["Limits:MaxConnections"] = "2" });
        var webSockets = broker.App.Services.GetRequiredService<OmniBroker.Host.BrokerEndpoints>().WebSocketEndPoint!.Port;
        using var device = Device(broker.DataDirectory, out var trustRoot, out var chain);
        var first = await TryConnectAsync(broker.MqttPort, trustRoot, device, chain, "backend-telemetry-1");
        var second = await TryConnectAsync(broker.MqttPort, trustRoot, device, chain, "backend-telemetry-2");
        try
        {
            first.Should().NotBeNull();
            second.Should().NotBeNull();
            // The WebSocket listener counts against the same cap: closed before its TLS handshake.
            (await TryHandshakeAsync(webSockets, trustRoot, device, chain)).Should().BeFalse();

            await first!.DisposeAsync();
            var admitted = false;
            for (var attempt = 0; attempt < 100 && !admitted; attempt++)
            {
                admitted = await TryHandshakeAsync(webSockets, trustRoot, device, chain);
                if (!admitted)
                {
                    await Task.Delay(100);
                }
            }
            admitted.Should().BeTrue("a slot is free once an MQTT client has left");
            broker.Logs.Entries.Should().Contain(e => e.EventId.Id == 1400 && e.Message.Contains("listener_connections", StringComparison.Ordinal));
        }
        finally
        {
            await second!.DisposeAsync();
        }
    }

    private static async Task<bool> TryHandshakeAsync(int port, X509Certificate2 trustRoot, X509Certificate2 device, X509Certificate2Collection chain)
    {
        try
        {
            await using var client = await RawMqttClient.OpenTlsAsync(port, trustRoot, device, chain, MqttProtocolVersion.V311);
            return true;
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return false;
        }
    }

    [Fact]
    public void Configuration_BadLimits_ReportedWithKeys()
    {
        var error = Assert.Throws<OmniBroker.Host.Configuration.BrokerConfigurationException>(() => OmniBroker.Host.OmniBrokerApp.Build(
            ["--Limits:MaxConnections=-1", "--Limits:ReservedDescriptors=lots", "--Limits:MaxConections=5", "--port=0", $"--data-dir={Path.GetTempPath()}omnibroker-cap-config"]));

        error.Errors.Should().Contain(e => e.StartsWith("Limits:MaxConnections: '-1'", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Limits:ReservedDescriptors: 'lots'", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Limits:MaxConections: unknown key", StringComparison.Ordinal));
    }

    /// <summary>A mutual-TLS connection with CONNECT accepted, or null when the broker closed it before the handshake
    /// finished (the cap). Anything else (a timeout, a CONNACK refusal) fails the test.</summary>
    private static async Task<RawMqttClient?> TryConnectAsync(int port, X509Certificate2 root, X509Certificate2 device, X509Certificate2Collection chain, string clientId)
    {
        RawMqttClient client;
        try
        {
            client = await RawMqttClient.OpenTlsAsync(port, root, device, chain, MqttProtocolVersion.V311);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return null;
        }
        await client.SendAsync(RawMqttClient.Connect(clientId, MqttProtocolVersion.V311));
        var connAck = await client.ExpectAsync<ConnAckPacket>(TimeSpan.FromSeconds(30));
        connAck.ReasonCode.Should().Be(MqttReasonCode.Success);
        return client;
    }

    private static X509Certificate2 Device(string data, out X509Certificate2 root, out X509Certificate2Collection chain)
    {
        var pki = Path.Combine(data, "pki");
        root = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "root-ca.crt"));
        chain = [X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "intermediate-ca.crt"))];
        return X509Certificate2.CreateFromPemFile(Path.Combine(pki, "devices", "backend-telemetry.crt"), Path.Combine(pki, "devices", "backend-telemetry.key"));
    }

    private static async Task<Exposition> ScrapeAsync(Uri http)
    {
        using var client = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(30) };
        return Exposition.Parse(await client.GetStringAsync("metrics"));
    }

    [GeneratedRegex(@"hold at most (\d+) connections")]
    private static partial Regex CapPattern();

    [GeneratedRegex(@"HTTP listening on (\S+) ")]
    private static partial Regex HttpPattern();
}
