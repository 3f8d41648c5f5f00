using System.Buffers;
using BenchmarkDotNet.Attributes;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Benchmarks;

/// <summary>
/// PUBLISH encode and decode, the codec's hot path. 5.0 packets carry a few properties (Message Expiry
/// Interval, Topic Alias, one User Property); 3.1.1 has none. Decode reads a packet already in memory and
/// leaves the payload as a slice; encode writes into a reused buffer, as a connection writes into its pipe.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*CodecBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private PublishPacket _packet = null!;
    private ReadOnlySequence<byte> _encoded;
    private ReadOnlySequence<byte> _encodedInTwoSegments;
    private ArrayBufferWriter<byte> _output = null!;

    [Params(MqttProtocolVersion.V311, MqttProtocolVersion.V500)]
    public MqttProtocolVersion Version { get; set; }

    [Params(MqttQos.AtMostOnce, MqttQos.AtLeastOnce)]
    public MqttQos Qos { get; set; }

    [Params(64, 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var payload = new byte[PayloadSize];
        new Random(42).NextBytes(payload);
        _packet = new PublishPacket
        {
            Topic = "plant/7/line/3/sensor/temperature",
            Qos = Qos,
            PacketId = Qos == MqttQos.AtMostOnce ? (ushort)0 : (ushort)4711,
            Payload = new ReadOnlySequence<byte>(payload),
            Properties = Version == MqttProtocolVersion.V500
                ? new MqttProperties
                {
                    MessageExpiryInterval = 3600,
                    TopicAlias = 12,
                    UserProperties = [new("unit", "celsius")],
                }
                : null,
        };

        _output = new ArrayBufferWriter<byte>(4096);
        MqttPacketWriter.Write(_output, _packet, Version);
        byte[] encoded = _output.WrittenSpan.ToArray();
        _encoded = new ReadOnlySequence<byte>(encoded);
        // Cut inside the topic: the string read has to assemble it from both segments.
        _encodedInTwoSegments = Split(encoded, 10);

        // Fail fast on a broken setup rather than measuring exceptions.
        if (Decode() is not PublishPacket { } decoded || decoded.Payload.Length != PayloadSize)
        {
            throw new InvalidOperationException("the encoded PUBLISH does not decode back");
        }
    }

    [Benchmark]
    public int Encode()
    {
        _output.ResetWrittenCount();
        MqttPacketWriter.Write(_output, _packet, Version);
        return _output.WrittenCount;
    }

    [Benchmark]
    public MqttPacket? Decode()
    {
        MqttPacketReader.TryRead(_encoded, Version, int.MaxValue, out MqttPacket? packet, out _, out _);
        return packet;
    }

    /// <summary>The packet straddles two pipe segments, the cut inside the Topic Name.</summary>
    [Benchmark]
    public MqttPacket? DecodeSplit()
    {
        MqttPacketReader.TryRead(_encodedInTwoSegments, Version, int.MaxValue, out MqttPacket? packet, out _, out _);
        return packet;
    }

    private static ReadOnlySequence<byte> Split(byte[] data, int at)
    {
        var first = new Segment(data.AsMemory(0, at), 0);
        var second = new Segment(data.AsMemory(at), at);
        first.SetNext(second);
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
