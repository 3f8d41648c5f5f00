using System.Buffers.Binary;
using System.Net.Security;
using OmniBroker.Benchmarks.Support;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Benchmarks.Load;

/// <summary>
/// One MQTT 3.1.1 connection of the load generator over mutual TLS, with a read loop that parses every packet:
/// a subscriber checks the numbering of each PUBLISH (publisher index and sequence in the first 12 payload bytes)
/// and acknowledges QoS 1; a publisher counts PUBACKs to keep its window.
/// </summary>
internal sealed class LoadClient : IAsyncDisposable
{
    private readonly MqttTlsClient _client;
    private readonly SemaphoreSlim? _window;
    private readonly long[] _next;
    private Task? _reader;

    private LoadClient(MqttTlsClient client, int publishers, int window)
    {
        _client = client;
        _next = new long[Math.Max(1, publishers)];
        _window = window > 0 ? new SemaphoreSlim(window, window) : null;
    }

    public long Received;
    public long Lost;
    public long Reordered;

    public SslStream Stream => _client.Stream;

    public static async Task<LoadClient> ConnectAsync(BrokerFixture broker, string commonName, string clientId, int publishers, int window,
        CancellationToken cancellationToken)
    {
        var client = await MqttTlsClient.ConnectAsync(broker.EndPoint, broker.Credentials(commonName), clientId, 0, cancellationToken).ConfigureAwait(false);
        return new LoadClient(client, publishers, window);
    }

    public Task SubscribeAsync(string filter, byte qos, CancellationToken cancellationToken) => _client.SubscribeAsync(filter, qos, cancellationToken);

    public void StartReading(CancellationToken cancellationToken) => _reader = Task.Run(() => ReadLoopAsync(cancellationToken), cancellationToken);

    /// <summary>Waits for a free slot of the publisher's QoS 1 window.</summary>
    public Task AcquireAsync(CancellationToken cancellationToken) => _window?.WaitAsync(cancellationToken) ?? Task.CompletedTask;

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) => _client.WriteAsync(bytes, cancellationToken);

    /// <summary>Messages not received by the end, per publisher: those after the last one seen.</summary>
    public long MissingAtEnd(long perPublisher)
    {
        long missing = 0;
        foreach (var next in _next)
        {
            missing += Math.Max(0, perPublisher - next);
        }
        return missing;
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync().ConfigureAwait(false);
        if (_reader is not null)
        {
            await _reader.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
        _window?.Dispose();
    }

    /// <summary>Encodes a numbered PUBLISH: payload = publisher index (4 bytes), sequence (8 bytes), padding.</summary>
    public static byte[] EncodePublish(string topic, int publisher, long sequence, int payloadSize, byte qos, ushort packetId)
    {
        var topicLength = System.Text.Encoding.UTF8.GetByteCount(topic);
        var remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadSize;
        var header = 1 + MqttVariableByteInteger.GetSize(remaining);
        var packet = new byte[header + remaining];
        packet[0] = (byte)(0x30 | (qos << 1));
        MqttVariableByteInteger.Encode(packet.AsSpan(1), remaining);
        var o = header;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), (ushort)topicLength);
        o += 2;
        o += System.Text.Encoding.UTF8.GetBytes(topic, packet.AsSpan(o));
        if (qos > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(o), packetId);
            o += 2;
        }
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(o), publisher);
        BinaryPrimitives.WriteInt64BigEndian(packet.AsSpan(o + 4), sequence);
        packet.AsSpan(o + 12, payloadSize - 12).Fill((byte)'x');
        return packet;
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[256 * 1024];
        var filled = 0;
        var acks = new byte[4 * 4096];
        while (!cancellationToken.IsCancellationRequested)
        {
            int read;
            try
            {
                read = await _client.Stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            if (read == 0)
            {
                return;
            }
            filled += read;
            var offset = 0;
            var ackLength = 0;
            while (TryParse(buffer.AsSpan(offset, filled - offset), out var type, out var flags, out var body, out var length))
            {
                var bodySpan = buffer.AsSpan(offset + body, length - body);
                if (type == 3)
                {
                    var qos = (flags >> 1) & 3;
                    var topicLength = BinaryPrimitives.ReadUInt16BigEndian(bodySpan);
                    var p = 2 + topicLength;
                    if (qos > 0)
                    {
                        acks[ackLength] = 0x40;
                        acks[ackLength + 1] = 2;
                        acks[ackLength + 2] = bodySpan[p];
                        acks[ackLength + 3] = bodySpan[p + 1];
                        ackLength += 4;
                        p += 2;
                    }
                    Count(BinaryPrimitives.ReadInt32BigEndian(bodySpan[p..]), BinaryPrimitives.ReadInt64BigEndian(bodySpan[(p + 4)..]));
                    if (ackLength == acks.Length)
                    {
                        await _client.WriteAsync(acks.AsMemory(0, ackLength), cancellationToken).ConfigureAwait(false);
                        ackLength = 0;
                    }
                }
                else if (type == 4)
                {
                    _window?.Release();
                }
                offset += length;
            }
            if (ackLength > 0)
            {
                await _client.WriteAsync(acks.AsMemory(0, ackLength), cancellationToken).ConfigureAwait(false);
            }
            buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
            filled -= offset;
        }
    }

    private void Count(int publisher, long sequence)
    {
        Interlocked.Increment(ref Received);
        ref var next = ref _next[publisher];
        if (sequence == next)
        {
            next++;
        }
        else if (sequence > next)
        {
            // A gap: counted lost unless the missing ones arrive later (then they are reordered, not lost).
            Interlocked.Add(ref Lost, sequence - next);
            next = sequence + 1;
        }
        else
        {
            // Below the next expected: either a duplicate or a late (reordered) one; lost was over-counted by one.
            Interlocked.Increment(ref Reordered);
            Interlocked.Decrement(ref Lost);
        }
    }

    private static bool TryParse(ReadOnlySpan<byte> data, out int type, out int flags, out int body, out int length)
    {
        bool whole = RawMqtt.TryPacket(data, out byte header, out body, out length);
        type = header >> 4;
        flags = header & 0x0F;
        return whole;
    }
}
