using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using OmniBroker.Mqtt;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Tests.Support;

/// <summary>
/// A deliberately dumb MQTT client for engine tests: it sends exactly the packets (or raw bytes) a test asks for,
/// acknowledges nothing by itself, and queues every packet the server sends, so tests observe the wire as is.
/// Every wait is bounded.
/// </summary>
public sealed class RawMqttClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient _tcp;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly Channel<MqttPacket> _received = Channel.CreateUnbounded<MqttPacket>();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Task _receiveLoop;
    private ushort _nextPacketId;

    private RawMqttClient(TcpClient tcp, MqttProtocolVersion version, Stream? stream = null)
    {
        _tcp = tcp;
        _stream = stream ?? tcp.GetStream();
        _reader = PipeReader.Create(_stream);
        Version = version;
        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    public MqttProtocolVersion Version { get; set; }

    /// <summary>Why the server's byte stream ended, if it ended with something else than a clean close.</summary>
    public Exception? ReceiveError { get; private set; }

    public bool IsClosed => _receiveLoop.IsCompleted;

    public static async Task<RawMqttClient> OpenAsync(int port, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
        return new RawMqttClient(tcp, version);
    }

    /// <summary>Opens a mutual-TLS connection (a real handshake with <paramref name="certificate"/>) without sending CONNECT.</summary>
    public static async Task<RawMqttClient> OpenTlsAsync(int port, System.Security.Cryptography.X509Certificates.X509Certificate2 trustedRoot,
        System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, IEnumerable<System.Security.Cryptography.X509Certificates.X509Certificate2> chain,
        MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
        var ssl = new System.Net.Security.SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            CertificateChainPolicy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
            {
                TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { trustedRoot },
                RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            },
            ClientCertificateContext = System.Net.Security.SslStreamCertificateContext.Create(certificate,
                new System.Security.Cryptography.X509Certificates.X509Certificate2Collection(chain.ToArray()), offline: true),
        }, cts.Token);
        return new RawMqttClient(tcp, version, ssl);
    }

    /// <summary>Opens a connection and completes CONNECT/CONNACK, returning the CONNACK (whatever its reason code).</summary>
    public static async Task<(RawMqttClient Client, ConnAckPacket ConnAck)> ConnectAsync(int port, ConnectPacket connect)
    {
        var client = await OpenAsync(port, connect.ProtocolVersion);
        await client.SendAsync(connect);
        var connAck = await client.ExpectAsync<ConnAckPacket>();
        return (client, connAck);
    }

    public ushort NextPacketId() => _nextPacketId = (ushort)(_nextPacketId % ushort.MaxValue + 1);

    public async Task SendAsync(MqttPacket packet)
    {
        var buffer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(buffer, packet, Version);
        await SendRawAsync(buffer.WrittenMemory);
    }

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await _writeLock.WaitAsync(cts.Token);
        try
        {
            await _stream.WriteAsync(bytes, cts.Token);
            await _stream.FlushAsync(cts.Token);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Next packet from the server; throws if none arrives in time or the connection closes first.</summary>
    public async Task<MqttPacket> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await _received.Reader.ReadAsync(cts.Token);
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"connection closed by the server while a packet was expected ({ReceiveError?.Message ?? "clean close"})");
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no packet from the server within {(timeout ?? DefaultTimeout).TotalSeconds}s");
        }
    }

    public async Task<T> ExpectAsync<T>(TimeSpan? timeout = null) where T : MqttPacket
    {
        var packet = await ReceiveAsync(timeout);
        return packet as T ?? throw new InvalidOperationException($"expected {typeof(T).Name}, received {Describe(packet)}");
    }

    /// <summary>Waits until the server closes the connection; returns the packets it sent before closing.</summary>
    public async Task<IReadOnlyList<MqttPacket>> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        var packets = new List<MqttPacket>();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (await _received.Reader.WaitToReadAsync(cts.Token))
            {
                while (_received.Reader.TryRead(out var packet))
                {
                    packets.Add(packet);
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the server did not close the connection within {(timeout ?? DefaultTimeout).TotalSeconds}s; received {string.Join(", ", packets.Select(Describe))}");
        }
        return packets;
    }

    // ------------------------------------------------------------------ conveniences

    public static ConnectPacket Connect(string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true,
        ushort keepAlive = 60, uint? sessionExpiry = null, WillMessage? will = null, MqttProperties? properties = null)
    {
        if (sessionExpiry is not null)
        {
            properties ??= new MqttProperties();
            properties.SessionExpiryInterval = sessionExpiry;
        }
        return new ConnectPacket
        {
            ProtocolVersion = version,
            ClientId = clientId,
            CleanStart = cleanStart,
            KeepAliveSeconds = keepAlive,
            Will = will,
            Properties = version == MqttProtocolVersion.V500 ? properties : null,
        };
    }

    public async Task<SubAckPacket> SubscribeAsync(string filter, MqttQos qos = MqttQos.AtMostOnce, bool noLocal = false,
        bool retainAsPublished = false, MqttRetainHandling retainHandling = MqttRetainHandling.SendAtSubscribe, uint? subscriptionId = null)
    {
        var subscribe = new SubscribePacket { PacketId = NextPacketId() };
        subscribe.Subscriptions.Add(new TopicSubscription(filter, new SubscriptionOptions(qos, noLocal, retainAsPublished, retainHandling)));
        if (subscriptionId is { } id)
        {
            subscribe.Properties = new MqttProperties { SubscriptionIdentifiers = [id] };
        }
        await SendAsync(subscribe);
        var subAck = await ExpectAsync<SubAckPacket>();
        if (subAck.PacketId != subscribe.PacketId)
        {
            throw new InvalidOperationException($"SUBACK for packet {subAck.PacketId}, expected {subscribe.PacketId}");
        }
        return subAck;
    }

    public static PublishPacket Publish(string topic, string payload, MqttQos qos = MqttQos.AtMostOnce, bool retain = false, ushort packetId = 0,
        MqttProperties? properties = null) => new()
    {
        Topic = topic,
        Payload = new ReadOnlySequence<byte>(System.Text.Encoding.UTF8.GetBytes(payload)),
        Qos = qos,
        Retain = retain,
        PacketId = qos == MqttQos.AtMostOnce ? (ushort)0 : packetId,
        Properties = properties,
    };

    /// <summary>Publishes and completes the acknowledgement flow for the QoS; returns the last acknowledgement (null for QoS 0).</summary>
    public async Task<PubAckPacket?> PublishAsync(string topic, string payload, MqttQos qos = MqttQos.AtMostOnce, bool retain = false,
        MqttProperties? properties = null)
    {
        var publish = Publish(topic, payload, qos, retain, qos == MqttQos.AtMostOnce ? (ushort)0 : NextPacketId(), properties);
        await SendAsync(publish);
        switch (qos)
        {
            case MqttQos.AtLeastOnce:
                return await ExpectAckAsync(MqttPacketType.PubAck, publish.PacketId);
            case MqttQos.ExactlyOnce:
                var pubRec = await ExpectAckAsync(MqttPacketType.PubRec, publish.PacketId);
                if ((byte)pubRec.ReasonCode >= 0x80)
                {
                    return pubRec;
                }
                await SendAsync(new PubAckPacket(MqttPacketType.PubRel) { PacketId = publish.PacketId });
                return await ExpectAckAsync(MqttPacketType.PubComp, publish.PacketId);
            default:
                return null;
        }
    }

    public async Task<PubAckPacket> ExpectAckAsync(MqttPacketType type, ushort packetId)
    {
        var ack = await ExpectAsync<PubAckPacket>();
        if (ack.PacketType != type || ack.PacketId != packetId)
        {
            throw new InvalidOperationException($"expected {type} {packetId}, received {Describe(ack)}");
        }
        return ack;
    }

    public async Task<PublishPacket> ExpectPublishAsync(TimeSpan? timeout = null) => await ExpectAsync<PublishPacket>(timeout);

    /// <summary>Round trip to the server: everything the server queued for us before the PINGRESP arrives first.</summary>
    public async Task<IReadOnlyList<MqttPacket>> PingAsync()
    {
        await SendAsync(PingReqPacket.Instance);
        var before = new List<MqttPacket>();
        while (true)
        {
            var packet = await ReceiveAsync();
            if (packet is PingRespPacket)
            {
                return before;
            }
            before.Add(packet);
        }
    }

    public Task DisconnectAsync(MqttReasonCode reasonCode = MqttReasonCode.Success) =>
        SendAsync(new DisconnectPacket { ReasonCode = reasonCode });

    /// <summary>Closes the socket with a RST, without DISCONNECT: an abnormal close for the server.</summary>
    public void Abort()
    {
        try
        {
            _tcp.Client.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        _tcp.Close();
    }

    public static string PayloadText(PublishPacket publish) => System.Text.Encoding.UTF8.GetString(publish.Payload.ToArray());

    public static string Describe(MqttPacket packet) => packet switch
    {
        PublishPacket p => $"PUBLISH {p.Topic} q{(int)p.Qos} id{p.PacketId} dup{(p.Dup ? 1 : 0)} retain{(p.Retain ? 1 : 0)} \"{PayloadText(p)}\"",
        PubAckPacket a => $"{a.PacketType} {a.PacketId} 0x{(byte)a.ReasonCode:X2}",
        DisconnectPacket d => $"DISCONNECT 0x{(byte)d.ReasonCode:X2}",
        ConnAckPacket c => $"CONNACK 0x{(byte)c.ReasonCode:X2} sp{(c.SessionPresent ? 1 : 0)}",
        _ => packet.Type.ToString(),
    };

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
        await Task.WhenAny(_receiveLoop, Task.Delay(DefaultTimeout));
        _writeLock.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync();
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.End;
                try
                {
                    while (MqttPacketReader.TryRead(buffer, Version, 268_435_460, out var packet, out var end, out _))
                    {
                        if (packet is PublishPacket publish)
                        {
                            // The payload is a slice of the pipe: own it before advancing.
                            publish.Payload = new ReadOnlySequence<byte>(publish.Payload.ToArray());
                        }
                        _received.Writer.TryWrite(packet);
                        buffer = buffer.Slice(end);
                        consumed = end;
                    }
                }
                finally
                {
                    _reader.AdvanceTo(consumed, examined);
                }
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (MqttProtocolException ex)
        {
            ReceiveError = ex;
        }
        catch (IOException ex)
        {
            ReceiveError = ex;
        }
        catch (ObjectDisposedException ex)
        {
            ReceiveError = ex;
        }
        finally
        {
            _received.Writer.TryComplete();
        }
    }
}
