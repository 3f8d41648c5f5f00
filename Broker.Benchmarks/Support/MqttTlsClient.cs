using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// What a benchmark client presents: its certificate (leaf with key, plus the intermediate it sends along) and the
/// TLS options shared by all its connections. Built once per device, as a device would.
/// </summary>
internal sealed class ClientCredentials : IDisposable
{
    private readonly X509Certificate2 _leaf;
    private readonly X509Certificate2Collection _chain;

    public ClientCredentials(string certificatePemPath, string keyPemPath, X509Certificate2 expectedServerCertificate)
    {
        // The .crt holds leaf + intermediate; the leaf gets the key, the rest is sent as the chain.
        X509Certificate2Collection all = [];
        all.ImportFromPemFile(certificatePemPath);
        _leaf = X509Certificate2.CreateFromPemFile(certificatePemPath, keyPemPath);
        _chain = [];
        for (int i = 1; i < all.Count; i++)
        {
            _chain.Add(all[i]);
        }

        byte[] pinned = expectedServerCertificate.RawData;
        Options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls13,
            ClientCertificateContext = SslStreamCertificateContext.Create(_leaf, _chain, offline: true),
            // Every connection is a full handshake: a resumed session would skip the certificates on both sides.
            AllowTlsResume = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            // The client pins the server certificate (as constrained devices often do) instead of building a chain,
            // so client CPU, which shares the two cores with the server, stays small.
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is X509Certificate2 c && c.RawDataMemory.Span.SequenceEqual(pinned),
        };
    }

    public SslClientAuthenticationOptions Options { get; }

    public void Dispose()
    {
        _leaf.Dispose();
        foreach (X509Certificate2 c in _chain)
        {
            c.Dispose();
        }
    }
}

/// <summary>
/// A minimal MQTT 3.1.1 client over mutual TLS, just enough for the benchmarks: CONNECT/CONNACK, SUBSCRIBE/SUBACK,
/// raw pre-encoded PUBLISH writes, a PUBLISH counter, DISCONNECT.
/// </summary>
internal sealed class MqttTlsClient : IAsyncDisposable
{
    private static readonly byte[] s_disconnect = [0xE0, 0x00];

    private readonly SslStream _stream;

    private MqttTlsClient(SslStream stream) => _stream = stream;

    public SslStream Stream => _stream;

    /// <summary>TCP connect, TLS 1.3 handshake with the client certificate, CONNECT (clean session), CONNACK.</summary>
    /// <exception cref="InvalidOperationException">the broker refused the CONNECT or closed the connection.</exception>
    public static async Task<MqttTlsClient> ConnectAsync(IPEndPoint endPoint, ClientCredentials credentials, string clientId,
        ushort keepAliveSeconds, CancellationToken cancellationToken)
    {
        Socket? socket = new(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? stream = null;
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            socket = null;
            await stream.AuthenticateAsClientAsync(credentials.Options, cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync(EncodeConnect(clientId, keepAliveSeconds), cancellationToken).ConfigureAwait(false);

            byte[] connack = new byte[4];
            await ReadExactAsync(stream, connack, cancellationToken).ConfigureAwait(false);
            if (connack[0] != 0x20 || connack[1] != 0x02 || connack[3] != 0x00)
            {
                throw new InvalidOperationException($"CONNECT of '{clientId}' refused: CONNACK {Convert.ToHexString(connack)}");
            }

            MqttTlsClient client = new(stream);
            stream = null;
            return client;
        }
        finally
        {
            // Only on failure: on success both are null (the stream owns the socket, the client owns the stream).
            socket?.Dispose();
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>SUBSCRIBE to one filter and wait for a SUBACK granting it.</summary>
    public async Task SubscribeAsync(string filter, byte qos, CancellationToken cancellationToken)
    {
        int filterLength = Encoding.UTF8.GetByteCount(filter);
        int remaining = 2 + 2 + filterLength + 1;
        byte[] packet = new byte[1 + MqttVariableByteInteger.GetSize(remaining) + remaining];
        int o = 0;
        packet[o++] = 0x82;
        o += MqttVariableByteInteger.Encode(packet.AsSpan(o), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), 1);
        o += 2;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), (ushort)filterLength);
        o += 2;
        o += Encoding.UTF8.GetBytes(filter, packet.AsSpan(o));
        packet[o] = qos;
        await _stream.WriteAsync(packet, cancellationToken).ConfigureAwait(false);

        byte[] suback = new byte[5];
        await ReadExactAsync(_stream, suback, cancellationToken).ConfigureAwait(false);
        if (suback[0] != 0x90 || suback[1] != 0x03 || suback[4] > 2)
        {
            throw new InvalidOperationException($"SUBSCRIBE '{filter}' refused: SUBACK {Convert.ToHexString(suback)}");
        }
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        _stream.WriteAsync(bytes, cancellationToken);

    /// <summary>DISCONNECT, then close (the client closes first, as a device that finished its work does).</summary>
    public async ValueTask DisconnectAsync(CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(s_disconnect, cancellationToken).ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();

    /// <summary>A QoS 0 PUBLISH (3.1.1 §3.3), not retained.</summary>
    public static byte[] EncodePublishQos0(string topic, ReadOnlySpan<byte> payload)
    {
        int topicLength = Encoding.UTF8.GetByteCount(topic);
        int remaining = 2 + topicLength + payload.Length;
        byte[] packet = new byte[1 + MqttVariableByteInteger.GetSize(remaining) + remaining];
        int o = 0;
        packet[o++] = 0x30;
        o += MqttVariableByteInteger.Encode(packet.AsSpan(o), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), (ushort)topicLength);
        o += 2;
        o += Encoding.UTF8.GetBytes(topic, packet.AsSpan(o));
        payload.CopyTo(packet.AsSpan(o));
        return packet;
    }

    /// <summary>CONNECT (3.1.1 §3.1): protocol level 4, clean session, no will, no username/password (the identity is
    /// the certificate).</summary>
    private static byte[] EncodeConnect(string clientId, ushort keepAliveSeconds)
    {
        int idLength = Encoding.UTF8.GetByteCount(clientId);
        int remaining = 10 + 2 + idLength;
        byte[] packet = new byte[1 + MqttVariableByteInteger.GetSize(remaining) + remaining];
        int o = 0;
        packet[o++] = 0x10;
        o += MqttVariableByteInteger.Encode(packet.AsSpan(o), remaining);
        ReadOnlySpan<byte> header = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02];
        header.CopyTo(packet.AsSpan(o));
        o += header.Length;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), keepAliveSeconds);
        o += 2;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), (ushort)idLength);
        o += 2;
        Encoding.UTF8.GetBytes(clientId, packet.AsSpan(o));
        return packet;
    }

    private static async Task ReadExactAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read < buffer.Length)
        {
            throw new InvalidOperationException($"connection closed by the broker after {read} of {buffer.Length} expected bytes");
        }
    }

}

/// <summary>Counts MQTT PUBLISH packets in a byte stream that may split packets anywhere.</summary>
internal struct PublishCounter
{
    private int _state; // 0: fixed header byte, 1: remaining length, 2: skipping the body
    private bool _isPublish;
    private LengthBytes _length;
    private int _lengthCount;
    private int _remaining;

    public long Publishes { get; private set; }

    public void Feed(ReadOnlySpan<byte> data)
    {
        int i = 0;
        while (i < data.Length)
        {
            switch (_state)
            {
                case 0:
                    _isPublish = (data[i++] >> 4) == 3;
                    _remaining = 0;
                    _lengthCount = 0;
                    _state = 1;
                    break;
                case 1:
                    _length[_lengthCount++] = data[i++];
                    if (MqttVariableByteInteger.TryDecode(((ReadOnlySpan<byte>)_length)[.._lengthCount], out _remaining, out _) == OperationStatus.Done)
                    {
                        Complete();
                    }

                    break;
                default:
                    int skip = Math.Min(_remaining, data.Length - i);
                    i += skip;
                    _remaining -= skip;
                    if (_remaining == 0)
                    {
                        Complete();
                    }

                    break;
            }
        }
    }

    private void Complete()
    {
        if (_remaining > 0)
        {
            _state = 2;
            return;
        }

        if (_isPublish)
        {
            Publishes++;
        }

        _state = 0;
    }
}

/// <summary>The (at most four) Remaining Length bytes seen so far, kept inline in the counter.</summary>
[System.Runtime.CompilerServices.InlineArray(MqttVariableByteInteger.MaxSize)]
internal struct LengthBytes
{
    private byte _first;
}
