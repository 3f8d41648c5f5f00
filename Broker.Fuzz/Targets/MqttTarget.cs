using System.Buffers;
using OmniBroker.Mqtt;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// MQTT packet reader (Broker.Mqtt/Codec/MqttPacketReader): decodes every packet of the input as a connection would,
/// once from one segment and once from 3-byte segments (the reader must not depend on how the pipe cut the bytes).
/// An input that starts with a CONNECT is read as a new connection (the CONNECT decides the version); any other as
/// packets after a CONNECT of <c>version</c>. Every decoded packet is re-encoded and must decode again: the writer
/// and the reader agree on what is valid. Expected: <see cref="MqttProtocolException"/>.
/// </summary>
internal static class MqttTarget
{
    // The broker's default Mqtt:MaximumPacketSize is larger; a smaller limit lets inputs reach the PacketTooLarge check.
    private const int MaximumPacketSize = 64 * 1024;

    public static void Run(byte[] data, MqttProtocolVersion version)
    {
        Decode(new ReadOnlySequence<byte>(data), version);
        if (data.Length > 3)
        {
            Decode(SegmentedSequence.FixedSegments(data, 3), version);
        }
    }

    private static void Decode(ReadOnlySequence<byte> input, MqttProtocolVersion defaultVersion)
    {
        MqttProtocolVersion? version = !input.IsEmpty && input.FirstSpan[0] >> 4 == (int)MqttPacketType.Connect ? null : defaultVersion;
        try
        {
            while (MqttPacketReader.TryRead(input, version, MaximumPacketSize, out MqttPacket? packet, out SequencePosition consumed, out _))
            {
                long length = input.Slice(input.Start, consumed).Length;
                if (length < 2)
                {
                    throw new InvalidOperationException($"the reader consumed {length} bytes for a {packet.GetType().Name}");
                }
                MqttProtocolVersion? readVersion = version;
                if (packet is ConnectPacket connect)
                {
                    version = connect.ProtocolVersion;
                }
                RoundTrip(packet, version ?? defaultVersion, readVersion);
                input = input.Slice(consumed);
            }
        }
        catch (MqttProtocolException)
        {
            // The documented answer to a malformed or forbidden packet.
        }
    }

    private static void RoundTrip(MqttPacket packet, MqttProtocolVersion version, MqttProtocolVersion? readVersion)
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, packet, version);
        var encoded = new ReadOnlySequence<byte>(output.WrittenMemory);
        try
        {
            if (!MqttPacketReader.TryRead(encoded, readVersion, int.MaxValue, out _, out SequencePosition consumed, out _)
                || !consumed.Equals(encoded.End))
            {
                throw new InvalidOperationException($"the re-encoded {packet.GetType().Name} is not one whole packet");
            }
        }
        catch (MqttProtocolException ex)
        {
            throw new InvalidOperationException($"the reader refuses the writer's encoding of a decoded {packet.GetType().Name}: {ex.Message}", ex);
        }
    }
}
