using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

/// <summary>
/// Handshakes that never finish count as <c>timeout</c> (issue 9 defect 8), concurrent handshakes are queued
/// (Tls:MaxConcurrentHandshakes), and Tls:Protocols restricts the TLS versions. The real host, real TLS clients.
/// </summary>
public sealed class HandshakeLimitsTests : IAsyncLifetime
{
    private const int RefusedEventId = 2001;
    private string _directory = null!;
    private TestPki _pki = null!;
    private TestPkiFiles _files = null!;

    public Task InitializeAsync()
    {
        _directory = TempDirectory.Create("omnibroker-handshake-limits");
        _pki = TestPki.Create();
        _files = _pki.WriteFiles(Path.Combine(_directory, "tls"));
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _pki.Dispose();
        TempDirectory.Delete(_directory);
        return Task.CompletedTask;
    }

    private Task<TestBroker> StartAsync(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?> { ["Revocation:Mode"] = "none" };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }
        return TestBroker.StartAsync(_files, Path.Combine(_directory, "data-" + Guid.NewGuid().ToString("N")[..6]), values,
            services => services.AddSingleton<OmniBroker.Mqtt.Abstractions.IMqttAuthorizer>(OmniBroker.Mqtt.Abstractions.AllowAllAuthorizer.Instance));
    }

    private static async Task<TcpClient> OpenAsync(int port, byte[] send)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork);
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        if (send.Length > 0)
        {
            await tcp.GetStream().WriteAsync(send);
        }
        return tcp;
    }

    private static async Task<CapturedLog> RefusalOfAsync(TestBroker broker, TcpClient tcp)
    {
        var local = tcp.Client.LocalEndPoint!.ToString();
        return await broker.Logs.WaitForAsync(e => e.EventId.Id == RefusedEventId && e.Value("RemoteAddress") == local, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Handshake_ClientSendsNothing_RefusedAsTimeout()
    {
        await using var broker = await StartAsync(("Tls:HandshakeTimeout", "1"));
        using var tcp = await OpenAsync(broker.MqttPort, []);

        var entry = await RefusalOfAsync(broker, tcp);

        entry.Value("Reason").Should().Be("timeout");
    }

    [Fact]
    public async Task Handshake_StalledClientHello_RefusedAsTimeout()
    {
        await using var broker = await StartAsync(("Tls:HandshakeTimeout", "1"));
        // A TLS handshake record header announcing 512 bytes, then nothing (slowloris).
        using var tcp = await OpenAsync(broker.MqttPort, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);

        var entry = await RefusalOfAsync(broker, tcp);

        entry.Value("Reason").Should().Be("timeout");
    }

    [Fact]
    public async Task Handshake_NotTls_RefusedAsTlsError()
    {
        await using var broker = await StartAsync(("Tls:HandshakeTimeout", "5"));
        using var tcp = await OpenAsync(broker.MqttPort, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());

        var entry = await RefusalOfAsync(broker, tcp);

        entry.Value("Reason").Should().Be("tls_error");
    }

    [Fact]
    public async Task HandshakeQueue_SlotHeldByStalledPeer_NextClientWaitsThenSucceeds()
    {
        // One slot, held for the 2 s handshake timeout by a stalled ClientHello; the real client queued behind it
        // waits about that long, and its own handshake clock only starts when it gets the slot.
        await using var broker = await StartAsync(("Tls:MaxConcurrentHandshakes", "1"), ("Tls:HandshakeTimeout", "2"));
        using var staller = await OpenAsync(broker.MqttPort, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
        await Task.Delay(300);
        var device = _pki.IssueLeaf("queued-device");

        var result = await TlsTestClient.ConnectAsync(broker.MqttPort, _pki.Root, device, [_pki.Intermediate]);

        result.Outcome.Should().Be(TlsClientOutcome.ConnAck, result.Error?.Message);
        // It waited for the stalled peer's slot: the staller's timeout is logged before the slot is handed on, so it
        // precedes the queued device's admission in the log.
        var refusal = await RefusalOfAsync(broker, staller);
        refusal.Value("Reason").Should().Be("timeout");
        var entries = broker.Logs.Entries.ToList();
        var admitted = entries.FindIndex(e => e.EventId.Id == 2000 && e.Message.Contains("queued-device", StringComparison.Ordinal));
        admitted.Should().BeGreaterThan(entries.IndexOf(refusal), "the queued device got the slot only when the staller timed out");
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 1400)).Value("Limit").Should().Be("tls_handshakes_queued");
    }

    [Fact]
    public async Task HandshakeQueue_StormOfClients_AllSucceed()
    {
        await using var broker = await StartAsync(("Tls:MaxConcurrentHandshakes", "2"));
        var devices = Enumerable.Range(0, 4).Select(i => _pki.IssueLeaf("storm-" + i)).ToArray();

        // Distinct client ids: with one shared id, a CONNECT could take over a client before its CONNACK was read.
        var results = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            TlsTestClient.ConnectAsync(broker.MqttPort, _pki.Root, devices[i % devices.Length], [_pki.Intermediate],
                connect: TlsTestClient.Connect311For($"storm-client-{i}"))));

        results.Select(r => r.Outcome).Should().AllBeEquivalentTo(TlsClientOutcome.ConnAck);
    }

    [Fact]
    public async Task TlsProtocols_Tls13Only_Tls12ClientRefusedTls13Accepted()
    {
        await using var broker = await StartAsync(("Tls:Protocols", "Tls13"));
        var device = _pki.IssueLeaf("tls13-only");

        var tls12 = await TlsTestClient.ConnectAsync(broker.MqttPort, _pki.Root, device, [_pki.Intermediate], SslProtocols.Tls12);
        var tls13 = await TlsTestClient.ConnectAsync(broker.MqttPort, _pki.Root, device, [_pki.Intermediate], SslProtocols.Tls13);

        tls12.Outcome.Should().Be(TlsClientOutcome.HandshakeFailed);
        tls13.Outcome.Should().Be(TlsClientOutcome.ConnAck);
        tls13.Protocol.Should().Be(SslProtocols.Tls13);
    }

    [Fact]
    public async Task TlsProtocols_Unknown_ConfigurationErrorNamesKey()
    {
        var act = () => StartAsync(("Tls:Protocols", "Ssl3"));

        (await act.Should().ThrowAsync<OmniBroker.Host.Configuration.BrokerConfigurationException>())
            .Which.Errors.Should().Contain(e => e.StartsWith("Tls:Protocols: 'Ssl3'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TlsEngine_Unknown_ConfigurationErrorNamesKey()
    {
        var act = () => StartAsync(("Tls:Engine", "Schannel"));

        (await act.Should().ThrowAsync<OmniBroker.Host.Configuration.BrokerConfigurationException>())
            .Which.Errors.Should().Contain(e => e.StartsWith("Tls:Engine: 'Schannel'", StringComparison.Ordinal));
    }
}
