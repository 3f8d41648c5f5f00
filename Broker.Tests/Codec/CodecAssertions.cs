using System.Buffers;
using FluentAssertions;
using FluentAssertions.Equivalency;
using OmniBroker.Fuzz;
using OmniBroker.Mqtt;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Codec;

/// <summary>Encode/decode helpers shared by the codec tests.</summary>
internal static class CodecAssertions
{
    public const int NoLimit = int.MaxValue;

    public static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, packet, version);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Decodes exactly one packet that fills <paramref name="input"/>.</summary>
    public static MqttPacket DecodeWhole(in ReadOnlySequence<byte> input, MqttProtocolVersion? version, int maximumPacketSize = NoLimit)
    {
        bool done = MqttPacketReader.TryRead(input, version, maximumPacketSize, out MqttPacket? packet,
            out SequencePosition consumed, out SequencePosition examined);
        done.Should().BeTrue("the input holds a whole packet");
        input.OffsetOf(consumed).Should().Be(input.Length, "consumed is the end of the packet");
        input.OffsetOf(examined).Should().Be(input.Length, "examined is the end of the packet");
        return packet!;
    }

    /// <summary>Decoding every segmentation of <paramref name="bytes"/> throws with <paramref name="expected"/>.</summary>
    public static void DecodeFails(byte[] bytes, MqttProtocolVersion? version, MqttReasonCode expected, int maximumPacketSize = NoLimit)
    {
        foreach (ReadOnlySequence<byte> input in SegmentedSequence.AllShapes(bytes))
        {
            Action read = () => MqttPacketReader.TryRead(input, version, maximumPacketSize, out _, out _, out _);
            read.Should().Throw<MqttProtocolException>()
                .Which.ReasonCode.Should().Be(expected, "segments {0}", Describe(input));
        }
    }

    /// <summary>Offset relative to the sequence's own start (GetOffset counts from the first segment).</summary>
    public static long OffsetOf(this in ReadOnlySequence<byte> sequence, SequencePosition position) =>
        sequence.Slice(sequence.Start, position).Length;

    public static string Describe(in ReadOnlySequence<byte> input)
    {
        var sizes = new List<int>();
        foreach (ReadOnlyMemory<byte> segment in input)
        {
            sizes.Add(segment.Length);
        }
        return "[" + string.Join(",", sizes) + "]";
    }

    /// <summary>Structural equality where binary members compare by content.</summary>
    public static void ShouldBeEquivalentPacket(this MqttPacket actual, MqttPacket expected)
    {
        actual.Should().BeOfType(expected.GetType());
        actual.Should().BeEquivalentTo(expected, options => options
            .RespectingRuntimeTypes()
            .WithStrictOrdering()
            .Using<ReadOnlyMemory<byte>>(ctx => ctx.Subject.ToArray().Should().Equal(ctx.Expectation.ToArray()))
            .WhenTypeIs<ReadOnlyMemory<byte>>()
            .Using<ReadOnlySequence<byte>>(ctx => ctx.Subject.ToArray().Should().Equal(ctx.Expectation.ToArray()))
            .WhenTypeIs<ReadOnlySequence<byte>>());
    }

    public static byte[] Bytes(params int[] values) => values.Select(v => checked((byte)v)).ToArray();

    /// <summary>"\x.." free way to write packets: hex bytes and 'quoted ASCII' mixed.</summary>
    public static byte[] Hex(string spec)
    {
        var bytes = new List<byte>();
        int i = 0;
        while (i < spec.Length)
        {
            char c = spec[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '\'')
            {
                int end = spec.IndexOf('\'', i + 1);
                bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(spec[(i + 1)..end]));
                i = end + 1;
            }
            else
            {
                bytes.Add(Convert.ToByte(spec.Substring(i, 2), 16));
                i += 2;
            }
        }
        return bytes.ToArray();
    }
}
