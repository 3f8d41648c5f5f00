using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Fuzz;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.WebSockets;

/// <summary>PROXY protocol v2 on the MQTT over TLS listener (Mqtt:ProxyProtocol): decoder and end to end.</summary>
public sealed class ProxyProtocolTests
{
    private static readonly Dictionary<string, string?> s_proxyOn = new() { ["Mqtt:ProxyProtocol"] = "true" };

    /// <summary>A v2 header as a load balancer writes it; <paramref name="tlvs"/> are appended after the addresses.</summary>
    internal static byte[] Header(IPEndPoint source, IPEndPoint destination, bool local = false, byte[]? tlvs = null)
    {
        var inet6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        var addressLength = inet6 ? 36 : 12;
        var extra = tlvs ?? [];
        var header = new byte[16 + addressLength + extra.Length];
        "\r\n\r\n\0\r\nQUIT\n"u8.CopyTo(header);
        header[12] = (byte)(local ? 0x20 : 0x21);
        header[13] = (byte)(inet6 ? 0x21 : 0x11);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)(addressLength + extra.Length));
        var body = header.AsSpan(16);
        var size = inet6 ? 16 : 4;
        source.Address.GetAddressBytes().CopyTo(body);
        destination.Address.GetAddressBytes().CopyTo(body[size..]);
        BinaryPrimitives.WriteUInt16BigEndian(body[(2 * size)..], (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(body[(2 * size + 2)..], (ushort)destination.Port);
        extra.CopyTo(body[addressLength..]);
        return header;
    }

    private static readonly IPEndPoint s_client = new(IPAddress.Parse("203.0.113.7"), 4242);
    private static readonly IPEndPoint s_balancer = new(IPAddress.Parse("198.51.100.1"), 8883);

    [Fact]
    public void TryRead_Inet4HeaderOneBytePerSegment_SourceAndEndAfterHeader()
    {
        var header = Header(s_client, s_balancer);
        var input = SegmentedSequence.OneBytePerSegment([.. header, 0x16, 0x03, 0x01]);

        ProxyProtocolV2.TryRead(input, out var parsed, out var end).Should().BeTrue();

        parsed.Source.Should().Be(s_client);
        parsed.Destination.Should().Be(s_balancer);
        input.Slice(end).ToArray().Should().Equal(0x16, 0x03, 0x01);
    }

    [Fact]
    public void TryRead_Inet6HeaderWithTlvs_TlvsSkipped()
    {
        var source = new IPEndPoint(IPAddress.Parse("2001:db8::7"), 50000);
        byte[] tlvs = [0x04, 0x00, 0x03, (byte)'a', (byte)'b', (byte)'c'];
        var header = Header(source, new IPEndPoint(IPAddress.Parse("2001:db8::1"), 8883), tlvs: tlvs);
        var input = SegmentedSequence.RandomSegments([.. header, 0xAA], seed: 3);

        ProxyProtocolV2.TryRead(input, out var parsed, out var end).Should().BeTrue();

        parsed.Source.Should().Be(source);
        input.Slice(end).ToArray().Should().Equal(0xAA);
    }

    [Fact]
    public void TryRead_EveryPrefixOfAValidHeader_NeedsMoreBytes()
    {
        var header = Header(s_client, s_balancer);
        for (var length = 0; length < header.Length; length++)
        {
            ProxyProtocolV2.TryRead(new ReadOnlySequence<byte>(header, 0, length), out _, out _).Should().BeFalse($"{length} bytes are not a whole header");
        }
    }

    [Fact]
    public void TryRead_LocalCommand_NoSourceAddress()
    {
        var header = Header(s_client, s_balancer, local: true);

        ProxyProtocolV2.TryRead(new ReadOnlySequence<byte>(header), out var parsed, out _).Should().BeTrue();

        parsed.Source.Should().BeNull("LOCAL (the balancer's own health check) keeps the socket address");
        parsed.Description.Should().Be("LOCAL");
    }

    [Theory]
    [InlineData("tls", "TLS ClientHello")]
    [InlineData("v1", "v1 text header")]
    [InlineData("version", "unsupported PROXY protocol version 1")]
    [InlineData("command", "unknown PROXY protocol v2 command 0x5")]
    [InlineData("udp", "datagram")]
    [InlineData("short", "12 are required")]
    public void TryRead_InvalidHeader_ThrowsWithReason(string kind, string expected)
    {
        var header = Header(s_client, s_balancer);
        byte[] input = kind switch
        {
            "tls" => [0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
            "v1" => Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 198.51.100.1 4242 8883\r\n"),
            "version" => Patch(header, 12, 0x11),
            "command" => Patch(header, 12, 0x25),
            "udp" => Patch(header, 13, 0x12),
            "short" => [.. Patch(Patch(header, 14, 0x00), 15, 0x04).Take(20)],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var read = () => ProxyProtocolV2.TryRead(SegmentedSequence.OneBytePerSegment(input), out _, out _);

        read.Should().Throw<ProxyProtocolException>().Which.Message.Should().Contain(expected);
    }

    [Fact]
    public async Task Serve_ProxyHeaderBeforeTls_ClientListedWithProxiedAddress()
    {
        await using var broker = await TestBroker.StartAsync(settings: s_proxyOn);
        using var sensor = DevDevice.Of(broker, "sensor-001");

        await using var mqtt = await ConnectThroughProxyAsync(broker, sensor, Header(s_client, s_balancer));
        await mqtt.SendAsync(RawMqttClient.Connect("sensor-001"));
        (await mqtt.ExpectAsync<ConnAckPacket>()).ReasonCode.Should().Be(MqttReasonCode.Success);

        var client = broker.App.Services.GetRequiredService<MqttBroker>().GetConnectedClients().Should().ContainSingle().Subject;
        client.RemoteEndPoint.Should().Be(s_client);
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 2000)).Value("RemoteAddress").Should().Be("203.0.113.7:4242",
            "certificate authentication runs after the PROXY header and logs the real client");
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 1000)).Value("RemoteEndPoint").Should().Be("203.0.113.7:4242");

        using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(10) };
        using var clients = JsonDocument.Parse(await http.GetStringAsync("/api/clients"));
        clients.RootElement.EnumerateArray().Should().ContainSingle()
            .Which.GetProperty("remoteAddress").GetString().Should().Be("203.0.113.7:4242");
    }

    [Fact]
    public async Task Serve_ProxyLocalCommand_SocketAddressKept()
    {
        await using var broker = await TestBroker.StartAsync(settings: s_proxyOn);
        using var sensor = DevDevice.Of(broker, "sensor-001");

        await using var mqtt = await ConnectThroughProxyAsync(broker, sensor, Header(s_client, s_balancer, local: true));
        await mqtt.SendAsync(RawMqttClient.Connect("sensor-001"));
        await mqtt.ExpectAsync<ConnAckPacket>();

        var remote = broker.App.Services.GetRequiredService<MqttBroker>().GetConnectedClients().Should().ContainSingle().Subject.RemoteEndPoint;
        remote.Should().BeOfType<IPEndPoint>().Which.Address.Should().Be(IPAddress.Loopback);
    }

    [Fact]
    public async Task Serve_GarbageInsteadOfProxyHeader_ConnectionClosedAndLogged()
    {
        await using var broker = await TestBroker.StartAsync(settings: s_proxyOn);
        using var tcp = new TcpClient(AddressFamily.InterNetwork);
        await tcp.ConnectAsync(IPAddress.Loopback, broker.MqttPort);
        var stream = tcp.GetStream();

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));

        (await RawWebSocket.ServerClosesAsync(stream)).Should().BeTrue();
        var rejected = await broker.Logs.WaitForAsync(e => e.EventId.Id == 2050);
        rejected.Value("Reason").Should().Contain("no PROXY protocol v2 signature").And.Contain("474554"); // "GET"
        broker.Logs.WithEventId(2001).Should().BeEmpty("no TLS was attempted, so nothing reached certificate authentication");
    }

    [Fact]
    public async Task Serve_DirectTlsWhenProxyExpected_RefusedWithHint()
    {
        await using var broker = await TestBroker.StartAsync(settings: s_proxyOn);
        using var sensor = DevDevice.Of(broker, "sensor-001");

        var result = await TlsTestClient.ConnectAsync(broker.MqttPort, sensor.Root, sensor.Certificate, sensor.Chain);

        result.Outcome.Should().Be(TlsClientOutcome.HandshakeFailed);
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 2050)).Value("Reason").Should().Contain("TLS ClientHello");
    }

    [Fact]
    public async Task Serve_ProxyProtocolOffByDefault_DirectTlsAccepted()
    {
        await using var broker = await TestBroker.StartAsync();
        using var sensor = DevDevice.Of(broker, "sensor-001");

        await using var mqtt = await StreamMqttClient.ConnectTlsAsync(broker.MqttPort, sensor);
        await mqtt.SendAsync(RawMqttClient.Connect("sensor-001"));

        (await mqtt.ExpectAsync<ConnAckPacket>()).ReasonCode.Should().Be(MqttReasonCode.Success);
        broker.Logs.WithEventId(2050).Should().BeEmpty();
    }

    /// <summary>What a TLS-passthrough balancer does: TCP, the PROXY header, then the client's own TLS bytes.</summary>
    private static async Task<StreamMqttClient> ConnectThroughProxyAsync(TestBroker broker, DevDevice device, byte[] header)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, broker.MqttPort, timeout.Token);
        var network = tcp.GetStream();
        await network.WriteAsync(header, timeout.Token);
        var ssl = new SslStream(network, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificateContext = SslStreamCertificateContext.Create(device.Certificate, new X509Certificate2Collection(device.Chain), offline: true),
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => WebSocketMqttClient.ChainsTo(certificate, chain, device.Root),
        }, timeout.Token);
        return new StreamMqttClient(ssl, MqttProtocolVersion.V500);
    }

    private static byte[] Patch(byte[] bytes, int index, byte value)
    {
        var copy = (byte[])bytes.Clone();
        copy[index] = value;
        return copy;
    }
}
