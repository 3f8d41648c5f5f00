using System.Buffers;
using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using Xunit;

namespace OmniBroker.Tests.Codec;

/// <summary>The one Variable Byte Integer decoder (MQTT 5.0 §1.5.5), used by the codec, the WebSocket close tracker,
/// tests and load tools.</summary>
public sealed class MqttVariableByteIntegerTests
{
    /// <summary>Where the encoding grows by a byte (also the Remaining Lengths the packet writer is tested at).</summary>
    public static TheoryData<int, string> EncodingBoundaries => new()
    {
        { 127, "7F" },
        { 128, "80 01" },
        { 16_383, "FF 7F" },
        { 16_384, "80 80 01" },
        { 2_097_151, "FF FF 7F" },
        { 2_097_152, "80 80 80 01" },
    };

    [Theory]
    [InlineData(0, "00")]
    [InlineData(268_435_455, "FF FF FF 7F")]
    [MemberData(nameof(EncodingBoundaries))]
    public void EncodeAndDecode_SpecBoundaries_RoundTripMinimally(int value, string hex)
    {
        var expected = Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));
        var buffer = new byte[MqttVariableByteInteger.MaxSize];

        MqttVariableByteInteger.Encode(buffer, value).Should().Be(expected.Length);
        buffer[..expected.Length].Should().Equal(expected);
        MqttVariableByteInteger.GetSize(value).Should().Be(expected.Length);
        MqttVariableByteInteger.TryDecode([.. expected, 0x55], out var decoded, out var consumed).Should().Be(OperationStatus.Done);
        (decoded, consumed).Should().Be((value, expected.Length));
    }

    [Theory]
    [InlineData("")]
    [InlineData("80")]
    [InlineData("FF FF")]
    [InlineData("80 80 80")]
    public void TryDecode_EveryByteSaysMoreFollows_NeedsMoreData(string hex)
    {
        MqttVariableByteInteger.TryDecode(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)), out _, out var consumed)
            .Should().Be(OperationStatus.NeedMoreData);
        consumed.Should().Be(0);
    }

    [Theory]
    [InlineData("80 00")]             // 0 in two bytes [MQTT-1.5.5-1]
    [InlineData("FF 80 00")]
    [InlineData("80 80 80 00")]
    [InlineData("FF FF FF FF")]       // a fifth byte would be needed
    [InlineData("FF FF FF FF 7F")]
    public void TryDecode_PaddedOrLongerThanFourBytes_Invalid(string hex)
    {
        MqttVariableByteInteger.TryDecode(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)), out _, out _)
            .Should().Be(OperationStatus.InvalidData);
    }

    [Fact]
    public void Encode_AboveTheMaximum_Throws()
    {
        var act = () => MqttVariableByteInteger.Encode(new byte[8], MqttVariableByteInteger.MaxValue + 1);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }
}
