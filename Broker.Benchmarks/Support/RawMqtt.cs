using System.Buffers;
using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Benchmarks.Support;

/// <summary>A minimal MQTT 3.1.1 client over mutual TLS for the load tools: packets built and parsed by hand, so that
/// the client costs next to nothing beside the broker it measures.</summary>
internal static class RawMqtt
{
    public static bool TryPacket(ReadOnlySpan<byte> data, out byte type, out int bodyOffset, out int length)
    {
        type = 0;
        bodyOffset = 0;
        length = 0;
        if (data.Length < 2)
        {
            return false;
        }
        if (MqttVariableByteInteger.TryDecode(data[1..], out int remaining, out int lengthBytes) != OperationStatus.Done)
        {
            return false;
        }
        int i = 1 + lengthBytes;
        if (data.Length < i + remaining)
        {
            return false;
        }
        type = data[0];
        bodyOffset = i;
        length = i + remaining;
        return true;
    }

    public static async Task<SslStream> ConnectAsync(BrokerFixture broker, string device, string clientId, bool cleanSession, CancellationToken token) =>
        (await ConnectWithAckAsync(broker, device, clientId, cleanSession, token)).Stream;

    /// <summary>Connects and returns the stream and the CONNACK's session-present flag.</summary>
    public static async Task<(SslStream Stream, bool SessionPresent)> ConnectWithAckAsync(BrokerFixture broker, string device, string clientId,
        bool cleanSession, CancellationToken token)
    {
        var socket = new Socket(broker.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(broker.EndPoint, token);
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await stream.AuthenticateAsClientAsync(broker.Credentials(device).Options, token);
        var id = Encoding.UTF8.GetBytes(clientId);
        var connect = new List<byte> { 0x10, (byte)(12 + id.Length), 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04,
            (byte)(cleanSession ? 0x02 : 0x00), 0x00, 0x3C, (byte)(id.Length >> 8), (byte)id.Length };
        connect.AddRange(id);
        await stream.WriteAsync(connect.ToArray(), token);
        var connack = new byte[4];
        await stream.ReadExactlyAsync(connack, token);
        if (connack[0] != 0x20 || connack[3] != 0)
        {
            throw new InvalidOperationException($"CONNECT {clientId} refused: {Convert.ToHexString(connack)}");
        }
        return (stream, (connack[2] & 1) != 0);
    }

    public static async Task WriteSubscribeAsync(SslStream stream, string filter, CancellationToken token, byte qos = 1)
    {
        var f = Encoding.UTF8.GetBytes(filter);
        var packet = new List<byte> { 0x82, (byte)(5 + f.Length), 0x00, 0x01, (byte)(f.Length >> 8), (byte)f.Length };
        packet.AddRange(f);
        packet.Add(qos);
        await stream.WriteAsync(packet.ToArray(), token);
    }

    public static async Task ReadPacketAsync(SslStream stream, byte[] buffer, CancellationToken token) =>
        await stream.ReadAtLeastAsync(buffer.AsMemory(0, 5), 5, throwOnEndOfStream: true, token);

    /// <summary>Reads the publisher's side until <paramref name="expected"/> PUBACKs arrived (or the stream ends or
    /// <paramref name="token"/> fires), releasing one <paramref name="permits"/> slot per PUBACK; returns how many
    /// arrived.</summary>
    public static async Task<int> ReadPubAcksAsync(SslStream publisher, int expected, SemaphoreSlim permits, CancellationToken token)
    {
        var acked = 0;
        var buffer = new byte[64 * 1024];
        var filled = 0;
        while (acked < expected && !token.IsCancellationRequested)
        {
            var read = await publisher.ReadAsync(buffer.AsMemory(filled), token);
            if (read == 0)
            {
                break;
            }
            filled += read;
            var offset = 0;
            while (TryPacket(buffer.AsSpan(offset, filled - offset), out var type, out _, out var length))
            {
                if (type >> 4 == 4)
                {
                    acked++;
                    permits.Release();
                }
                offset += length;
            }
            Buffer.BlockCopy(buffer, offset, buffer, 0, filled - offset);
            filled -= offset;
        }
        return acked;
    }

    public static byte[] EncodePublishQos0(string topic, ReadOnlySpan<byte> payload)
    {
        var t = Encoding.UTF8.GetBytes(topic);
        var remaining = 2 + t.Length + payload.Length;
        var packet = new byte[2 + remaining];
        packet[0] = 0x30;
        packet[1] = (byte)remaining;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)t.Length);
        t.CopyTo(packet.AsSpan(4));
        payload.CopyTo(packet.AsSpan(4 + t.Length));
        return packet;
    }

    public static byte[] EncodePublishQos1(string topic, ReadOnlySpan<byte> payload, ushort packetId)
    {
        var t = Encoding.UTF8.GetBytes(topic);
        var remaining = 2 + t.Length + 2 + payload.Length;
        var packet = new byte[2 + remaining];
        packet[0] = 0x32;
        packet[1] = (byte)remaining;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)t.Length);
        t.CopyTo(packet.AsSpan(4));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4 + t.Length), packetId);
        payload.CopyTo(packet.AsSpan(6 + t.Length));
        return packet;
    }
}
