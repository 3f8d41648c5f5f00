using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Http;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Host;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.WebSockets;

/// <summary>A device of the development PKI in a started <see cref="TestBroker"/>: PEM paths and loaded certificates.</summary>
public sealed class DevDevice : IDisposable
{
    private DevDevice(string pkiDirectory, string name)
    {
        Name = name;
        CertificatePath = Path.Combine(pkiDirectory, DevelopmentPki.DevicesDirectory, name + ".crt");
        KeyPath = Path.Combine(pkiDirectory, DevelopmentPki.DevicesDirectory, name + ".key");
        CaPath = Path.Combine(pkiDirectory, DevelopmentPki.CaChainFile);
        Certificate = X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
        Chain = PemCertificates.LoadAll(CertificatePath).Skip(1).ToArray();
        Root = PemCertificates.LoadAll(Path.Combine(pkiDirectory, DevelopmentPki.RootCertificateFile))[0];
    }

    public string Name { get; }
    public string CertificatePath { get; }
    public string KeyPath { get; }
    public string CaPath { get; }
    public X509Certificate2 Certificate { get; }
    public X509Certificate2[] Chain { get; }
    public X509Certificate2 Root { get; }

    public static DevDevice Of(TestBroker broker, string name) => new(Path.Combine(broker.DataDirectory, "pki"), name);

    public void Dispose() => Certificate.Dispose();
}

public static class WebSocketBroker
{
    public static int WebSocketPort(this TestBroker broker) =>
        broker.App.Services.GetRequiredService<BrokerEndpoints>().WebSocketEndPoint?.Port
        ?? throw new InvalidOperationException("the WebSocket listener is not enabled");

    public static Uri WebSocketUrl(this TestBroker broker, string path = "/mqtt") => new($"wss://127.0.0.1:{broker.WebSocketPort()}{path}");
}

/// <summary>MQTT packets over <see cref="ClientWebSocket"/> (.NET's real WebSocket client) with a client certificate.
/// Sends exactly the messages a test asks for and decodes what arrives without acknowledging anything.</summary>
public sealed class WebSocketMqttClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker _invoker;
    private readonly Pipe _received = new();
    private readonly MqttProtocolVersion _version;

    private WebSocketMqttClient(ClientWebSocket socket, HttpMessageInvoker invoker, MqttProtocolVersion version)
    {
        _socket = socket;
        _invoker = invoker;
        _version = version;
    }

    public WebSocket Socket => _socket;

    public static async Task<WebSocketMqttClient> ConnectAsync(Uri url, DevDevice device, MqttProtocolVersion version = MqttProtocolVersion.V500,
        string? subProtocol = "mqtt", X509Certificate2? clientCertificate = null, IEnumerable<X509Certificate2>? clientChain = null)
    {
        var socket = new ClientWebSocket();
        if (subProtocol is not null)
        {
            socket.Options.AddSubProtocol(subProtocol);
        }
        var root = device.Root;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificateContext = SslStreamCertificateContext.Create(clientCertificate ?? device.Certificate,
                    new X509Certificate2Collection((clientChain ?? device.Chain).ToArray()), offline: true),
                RemoteCertificateValidationCallback = (_, certificate, chain, _) => ChainsTo(certificate, chain, root),
            },
        };
        var invoker = new HttpMessageInvoker(handler);
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await socket.ConnectAsync(url, invoker, timeout.Token);
        }
        catch
        {
            socket.Dispose();
            invoker.Dispose();
            throw;
        }
        return new WebSocketMqttClient(socket, invoker, version);
    }

    internal static bool ChainsTo(X509Certificate? certificate, X509Chain? sent, X509Certificate2 root)
    {
        if (certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        if (sent is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
        }
        return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    public static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var buffer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(buffer, packet, version);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Sends the bytes as one binary message.</summary>
    public async Task SendMessageAsync(ReadOnlyMemory<byte> bytes)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        await _socket.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
    }

    public Task SendAsync(MqttPacket packet) => SendMessageAsync(Encode(packet, _version));

    /// <summary>Next MQTT packet, whatever the message boundaries; null when the server closed the WebSocket first.</summary>
    public async Task<MqttPacket?> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (true)
        {
            if (_received.Reader.TryRead(out var read))
            {
                var buffer = read.Buffer;
                if (MqttPacketReader.TryRead(buffer, _version, 1 << 20, out var packet, out var consumed, out var examined))
                {
                    var copy = packet is PublishPacket publish ? Copy(publish) : packet;
                    _received.Reader.AdvanceTo(consumed, consumed);
                    return copy;
                }
                _received.Reader.AdvanceTo(consumed, examined);
            }

            var memory = _received.Writer.GetMemory(4096);
            var result = await _socket.ReceiveAsync(memory, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                // A well-behaved client answers the Close at once (RFC 6455 §5.5.1), echoing the status.
                if (_socket.State == WebSocketState.CloseReceived)
                {
                    await _socket.CloseOutputAsync(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null, timeout.Token);
                }
                return null;
            }
            if (result.MessageType != WebSocketMessageType.Binary)
            {
                throw new InvalidOperationException($"the server sent a {result.MessageType} message");
            }
            _received.Writer.Advance(result.Count);
            await _received.Writer.FlushAsync(timeout.Token);
        }
    }

    public async Task<T> ExpectAsync<T>() where T : MqttPacket
    {
        var packet = await ReceiveAsync();
        return packet as T ?? throw new InvalidOperationException($"expected {typeof(T).Name}, received {(packet is null ? $"WebSocket Close {_socket.CloseStatus}" : RawMqttClient.Describe(packet))}");
    }

    /// <summary>Reads until the server's Close; returns the packets before it. The close status is on <see cref="Socket"/>.</summary>
    public async Task<IReadOnlyList<MqttPacket>> WaitForCloseAsync()
    {
        var packets = new List<MqttPacket>();
        while (await ReceiveAsync() is { } packet)
        {
            packets.Add(packet);
        }
        return packets;
    }

    private static PublishPacket Copy(PublishPacket publish) => new()
    {
        Topic = publish.Topic,
        Qos = publish.Qos,
        Retain = publish.Retain,
        Dup = publish.Dup,
        PacketId = publish.PacketId,
        Payload = new ReadOnlySequence<byte>(publish.Payload.ToArray()),
    };

    public async ValueTask DisposeAsync()
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }
        }
        _socket.Dispose();
        _invoker.Dispose();
    }
}

/// <summary>WebSocket by hand over TLS, for hostile-peer tests: the upgrade request and frames are written byte by byte.</summary>
public static class RawWebSocket
{
    public const byte Continuation = 0x0;
    public const byte Text = 0x1;
    public const byte Binary = 0x2;
    public const byte Close = 0x8;

    /// <summary>Sends an RFC 6455 opening handshake and returns the response head (status line and headers).</summary>
    public static async Task<string> UpgradeAsync(Stream stream, string path = "/mqtt", string? subProtocol = "mqtt")
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        var request = new StringBuilder()
            .Append("GET ").Append(path).Append(" HTTP/1.1\r\n")
            .Append("Host: 127.0.0.1\r\n")
            .Append("Upgrade: websocket\r\n")
            .Append("Connection: Upgrade\r\n")
            .Append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
            .Append("Sec-WebSocket-Version: 13\r\n");
        if (subProtocol is not null)
        {
            request.Append("Sec-WebSocket-Protocol: ").Append(subProtocol).Append("\r\n");
        }
        request.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), timeout.Token);
        await stream.FlushAsync(timeout.Token);

        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, timeout.Token) == 0)
            {
                throw new IOException("connection closed during the WebSocket handshake: " + Encoding.ASCII.GetString(head.ToArray()));
            }
            head.Add(one[0]);
        }
        return Encoding.ASCII.GetString(head.ToArray());
    }

    /// <summary>One frame; client frames are masked (RFC 6455 §5.3) unless a test wants a broken one.</summary>
    public static byte[] Frame(byte opcode, ReadOnlySpan<byte> payload, bool fin = true, bool masked = true, byte reservedBits = 0)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | reservedBits << 4 | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (payload.Length < 126)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        byte[] mask = [0x37, 0xFA, 0x21, 0x3D];
        if (masked)
        {
            frame.AddRange(mask);
        }
        for (var i = 0; i < payload.Length; i++)
        {
            frame.Add(masked ? (byte)(payload[i] ^ mask[i % 4]) : payload[i]);
        }
        return frame.ToArray();
    }

    public static byte[] CloseFrame(ushort status)
    {
        Span<byte> body = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(body, status);
        return Frame(Close, body);
    }

    /// <summary>Next server frame; null at the end of the stream (bounded wait).</summary>
    public static async Task<(byte Opcode, byte[] Payload)?> ReadFrameAsync(Stream stream)
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        var header = new byte[2];
        if (!await ReadExactlyOrEndAsync(stream, header, timeout.Token))
        {
            return null;
        }
        long length = header[1] & 0x7F;
        if (length == 126)
        {
            var extended = new byte[2];
            await stream.ReadExactlyAsync(extended, timeout.Token);
            length = BinaryPrimitives.ReadUInt16BigEndian(extended);
        }
        else if (length == 127)
        {
            var extended = new byte[8];
            await stream.ReadExactlyAsync(extended, timeout.Token);
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(extended);
        }
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload, timeout.Token);
        return ((byte)(header[0] & 0x0F), payload);
    }

    /// <summary>Reads frames until the server's Close; returns its status code (0 when the Close had no body) and
    /// the binary payloads before it, or throws when the stream ended without a Close.</summary>
    public static async Task<(ushort Status, List<byte[]> Before)> ReadUntilCloseAsync(Stream stream)
    {
        var before = new List<byte[]>();
        while (true)
        {
            var frame = await ReadFrameAsync(stream) ?? throw new IOException("the server closed the connection without a WebSocket Close frame");
            if (frame.Opcode == Close)
            {
                return (frame.Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(frame.Payload) : (ushort)0, before);
            }
            before.Add(frame.Payload);
        }
    }

    /// <summary>True when the server ends the connection (EOF or reset) within the timeout.</summary>
    public static async Task<bool> ServerClosesAsync(Stream stream)
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        var buffer = new byte[256];
        try
        {
            while (await stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                return read == 0 ? false : throw new IOException("the stream ended inside a frame header");
            }
            read += n;
        }
        return true;
    }
}

/// <summary>MQTT packets over any stream (TLS to the TCP listener, possibly after a PROXY header); no acknowledgements
/// sent by itself, every wait bounded.</summary>
public sealed class StreamMqttClient : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly MqttProtocolVersion _version;

    public StreamMqttClient(Stream stream, MqttProtocolVersion version)
    {
        _stream = stream;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        _version = version;
    }

    /// <summary>TLS to the MQTT over TLS listener with the device's certificate.</summary>
    public static async Task<StreamMqttClient> ConnectTlsAsync(int port, DevDevice device, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        var ssl = await TlsTestClient.HandshakeAsync(port, device.Root, device.Certificate, device.Chain, cancellationToken: timeout.Token);
        return new StreamMqttClient(ssl, version);
    }

    public async Task SendAsync(MqttPacket packet)
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        await _stream.WriteAsync(WebSocketMqttClient.Encode(packet, _version), timeout.Token);
        await _stream.FlushAsync(timeout.Token);
    }

    /// <summary>Next packet; null when the server closed the connection.</summary>
    public async Task<MqttPacket?> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(WebSocketMqttClient.Timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _reader.ReadAsync(timeout.Token);
            }
            catch (IOException)
            {
                return null;
            }
            var buffer = result.Buffer;
            if (MqttPacketReader.TryRead(buffer, _version, 1 << 20, out var packet, out var consumed, out var examined))
            {
                var copy = packet is PublishPacket publish
                    ? new PublishPacket { Topic = publish.Topic, Qos = publish.Qos, PacketId = publish.PacketId, Payload = new ReadOnlySequence<byte>(publish.Payload.ToArray()) }
                    : packet;
                _reader.AdvanceTo(consumed, consumed);
                return copy;
            }
            _reader.AdvanceTo(consumed, examined);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    public async Task<T> ExpectAsync<T>() where T : MqttPacket
    {
        var packet = await ReceiveAsync();
        return packet as T ?? throw new InvalidOperationException($"expected {typeof(T).Name}, received {(packet is null ? "end of stream" : RawMqttClient.Describe(packet))}");
    }

    public async ValueTask DisposeAsync()
    {
        await _reader.CompleteAsync();
        await _stream.DisposeAsync();
    }
}
