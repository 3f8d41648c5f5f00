using System.Buffers;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// The Variable Byte Integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3: the Remaining Length): seven bits per byte, least
/// significant first, the high bit saying "more follows", at most four bytes. The one decoder and encoder of the
/// solution: the codec, the WebSocket close tracker, tests and load tools all use it.
/// </summary>
public static class MqttVariableByteInteger
{
    /// <summary>The largest value four bytes hold (0xFF 0xFF 0xFF 0x7F).</summary>
    public const int MaxValue = 268_435_455;

    public const int MaxSize = 4;

    /// <summary>Bytes the minimal encoding of <paramref name="value"/> takes.</summary>
    public static int GetSize(int value) =>
        value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x20_0000 ? 3 : 4;

    /// <summary>
    /// Decodes the integer at the start of <paramref name="source"/>. <see cref="OperationStatus.NeedMoreData"/>: every
    /// byte so far says more follows; <see cref="OperationStatus.InvalidData"/>: a fifth byte would be needed, or the
    /// encoding is not the shortest ([MQTT-1.5.5-1]; a padded length is how a peer would smuggle an ambiguous one).
    /// </summary>
    public static OperationStatus TryDecode(ReadOnlySpan<byte> source, out int value, out int bytesConsumed)
    {
        int result = 0;
        for (int i = 0; i < MaxSize; i++)
        {
            if (i == source.Length)
            {
                break;
            }

            byte b = source[i];
            result |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                bool minimal = b != 0 || i == 0;
                value = minimal ? result : 0;
                bytesConsumed = minimal ? i + 1 : 0;
                return minimal ? OperationStatus.Done : OperationStatus.InvalidData;
            }
        }

        value = 0;
        bytesConsumed = 0;
        return source.Length < MaxSize ? OperationStatus.NeedMoreData : OperationStatus.InvalidData;
    }

    /// <summary>Writes the minimal encoding of <paramref name="value"/> (0 to <see cref="MaxValue"/>); returns its size.</summary>
    public static int Encode(Span<byte> destination, int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxValue);
        int size = GetSize(value);
        for (int i = 0; i < size - 1; i++)
        {
            destination[i] = (byte)((value & 0x7F) | 0x80);
            value >>= 7;
        }

        destination[size - 1] = (byte)value;
        return size;
    }
}
