using System.Buffers;
using FluentAssertions;
using OmniBroker.Fuzz;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Codec;

public class MqttCodecRoundTripTests
{
    public static TheoryData<string, MqttProtocolVersion> AllPackets()
    {
        var data = new TheoryData<string, MqttProtocolVersion>();
        foreach (string name in PacketSamples.Names)
        {
            if (name != "AUTH")
            {
                data.Add(name, MqttProtocolVersion.V311);
            }
            data.Add(name, MqttProtocolVersion.V500);
        }
        return data;
    }

    private static MqttProtocolVersion? ReaderVersion(MqttPacket packet, MqttProtocolVersion version) =>
        packet is ConnectPacket ? null : version;

    [Theory]
    [MemberData(nameof(AllPackets))]
    public void RoundTrip_AnySegmentation_DecodesToTheSamePacketAndReencodesToTheSameBytes(string name, MqttProtocolVersion version)
    {
        MqttPacket original = PacketSamples.Create(name, version);
        byte[] encoded = CodecAssertions.Encode(original, version);

        MqttPacketWriter.GetEncodedSize(original, version).Should().Be(encoded.Length);

        foreach (ReadOnlySequence<byte> input in SegmentedSequence.AllShapes(encoded))
        {
            MqttPacket decoded = CodecAssertions.DecodeWhole(input, ReaderVersion(original, version));
            decoded.ShouldBeEquivalentPacket(original);
            CodecAssertions.Encode(decoded, version).Should().Equal(encoded, "segments {0}", CodecAssertions.Describe(input));
        }
    }

    [Theory]
    [MemberData(nameof(AllPackets))]
    public void TryRead_FedOneByteAtATime_ReturnsFalseUntilTheLastByte(string name, MqttProtocolVersion version)
    {
        MqttPacket original = PacketSamples.Create(name, version);
        byte[] encoded = CodecAssertions.Encode(original, version);
        MqttProtocolVersion? readerVersion = ReaderVersion(original, version);

        for (int available = 0; available < encoded.Length; available++)
        {
            ReadOnlySequence<byte> partial = SegmentedSequence.RandomSegments(encoded.AsSpan(0, available), seed: available);
            bool done = MqttPacketReader.TryRead(partial, readerVersion, CodecAssertions.NoLimit, out MqttPacket? packet,
                out SequencePosition consumed, out SequencePosition examined);

            done.Should().BeFalse("only {0} of {1} bytes are there", available, encoded.Length);
            packet.Should().BeNull();
            partial.OffsetOf(consumed).Should().Be(0, "nothing is consumed until a packet is complete");
            partial.OffsetOf(examined).Should().Be(available, "everything available was examined");
        }

        CodecAssertions.DecodeWhole(SegmentedSequence.RandomSegments(encoded, seed: 99), readerVersion).ShouldBeEquivalentPacket(original);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public void TryRead_TwoPacketsInOneBuffer_ReadsThemOneAfterTheOther(MqttProtocolVersion version)
    {
        MqttPacket first = PacketSamples.Create("PUBLISH-qos1", version);
        MqttPacket second = PacketSamples.Create("SUBSCRIBE", version);
        byte[] a = CodecAssertions.Encode(first, version);
        byte[] b = CodecAssertions.Encode(second, version);
        byte[] both = [.. a, .. b];

        foreach (ReadOnlySequence<byte> input in SegmentedSequence.AllShapes(both))
        {
            MqttPacketReader.TryRead(input, version, CodecAssertions.NoLimit, out MqttPacket? p1, out SequencePosition consumed1, out SequencePosition examined1)
                .Should().BeTrue();
            input.OffsetOf(consumed1).Should().Be(a.Length);
            input.OffsetOf(examined1).Should().Be(a.Length, "the second packet was not looked at");
            p1!.ShouldBeEquivalentPacket(first);

            ReadOnlySequence<byte> rest = input.Slice(consumed1);
            MqttPacketReader.TryRead(rest, version, CodecAssertions.NoLimit, out MqttPacket? p2, out SequencePosition consumed2, out _)
                .Should().BeTrue();
            rest.OffsetOf(consumed2).Should().Be(b.Length);
            p2!.ShouldBeEquivalentPacket(second);
        }
    }

    [Fact]
    public void TryRead_ConnectThenPublish_VersionComesFromTheConnect()
    {
        var connect = (ConnectPacket)PacketSamples.Create("CONNECT", MqttProtocolVersion.V500);
        byte[] bytes = [.. CodecAssertions.Encode(connect, MqttProtocolVersion.V500),
            .. CodecAssertions.Encode(PacketSamples.Create("PUBLISH-qos1", MqttProtocolVersion.V500), MqttProtocolVersion.V500)];
        var input = SegmentedSequence.RandomSegments(bytes, seed: 5);

        MqttPacketReader.TryRead(input, null, CodecAssertions.NoLimit, out MqttPacket? first, out SequencePosition consumed, out _).Should().BeTrue();
        MqttProtocolVersion version = first.Should().BeOfType<ConnectPacket>().Subject.ProtocolVersion;
        version.Should().Be(MqttProtocolVersion.V500);

        MqttPacketReader.TryRead(input.Slice(consumed), version, CodecAssertions.NoLimit, out MqttPacket? second, out _, out _).Should().BeTrue();
        second.Should().BeOfType<PublishPacket>().Which.Properties!.TopicAlias.Should().Be(3);
    }

    [Fact]
    public void TryRead_Publish_PayloadIsASliceOfTheInput()
    {
        byte[] encoded = CodecAssertions.Encode(PacketSamples.Create("PUBLISH-qos1", MqttProtocolVersion.V311), MqttProtocolVersion.V311);
        ReadOnlySequence<byte> input = SegmentedSequence.RandomSegments(encoded, seed: 3, maxSegment: 64);

        var publish = (PublishPacket)CodecAssertions.DecodeWhole(input, MqttProtocolVersion.V311);

        // Same segment objects and offsets: the payload was not copied.
        int payloadOffset = encoded.Length - 300;
        publish.Payload.Start.Should().Be(input.GetPosition(payloadOffset));
        publish.Payload.End.Should().Be(input.End);
        publish.Payload.Start.GetObject().Should().BeSameAs(input.GetPosition(payloadOffset).GetObject());
    }

    [Fact]
    public void TryRead_LargePublishAcrossManySegments_DecodesPayloadIntact()
    {
        byte[] payload = new byte[200_000];
        new Random(7).NextBytes(payload);
        var original = new PublishPacket { Topic = "big", Qos = MqttQos.AtLeastOnce, PacketId = 5, Payload = new ReadOnlySequence<byte>(payload) };
        byte[] encoded = CodecAssertions.Encode(original, MqttProtocolVersion.V500);
        encoded[1].Should().BeGreaterThan(0x7F, "a 200 KB packet needs a 3-byte Remaining Length");

        var decoded = (PublishPacket)CodecAssertions.DecodeWhole(
            SegmentedSequence.RandomSegments(encoded, seed: 11, maxSegment: 4096), MqttProtocolVersion.V500);

        decoded.Payload.ToArray().Should().Equal(payload);
    }
}
