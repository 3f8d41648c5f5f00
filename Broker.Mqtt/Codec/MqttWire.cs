using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// MQTT data representations (5.0 §1.5, 3.1.1 §1.5): Two/Four Byte Integer, Variable Byte Integer,
/// UTF-8 Encoded String, Binary Data. Decoding runs over a reader bounded to the packet body, so
/// "not enough bytes" here always means the Remaining Length lied: a malformed packet.
/// </summary>
internal static class MqttWire
{
    public const int MaxVariableByteInteger = MqttVariableByteInteger.MaxValue;
    public const int MaxStringLength = ushort.MaxValue;

    // Strings up to this size that straddle segments are assembled on the stack.
    private const int StackCopyLimit = 256;

    public static int VariableByteIntegerSize(int value) => MqttVariableByteInteger.GetSize(value);

    public static byte ReadByte(ref SequenceReader<byte> reader)
    {
        if (!reader.TryRead(out byte value))
        {
            MqttThrow.Malformed("packet ends inside a field");
        }
        return value;
    }

    public static ushort ReadUInt16(ref SequenceReader<byte> reader)
    {
        if (!reader.TryReadBigEndian(out short value))
        {
            MqttThrow.Malformed("packet ends inside a Two Byte Integer");
        }
        return (ushort)value;
    }

    public static uint ReadUInt32(ref SequenceReader<byte> reader)
    {
        if (!reader.TryReadBigEndian(out int value))
        {
            MqttThrow.Malformed("packet ends inside a Four Byte Integer");
        }
        return (uint)value;
    }

    // 5.0 §1.5.5 with the one decoder (MqttVariableByteInteger): inside a packet body running out of bytes means the
    // Remaining Length lied, so both outcomes other than Done are malformed.
    public static int ReadVariableByteInteger(ref SequenceReader<byte> reader)
    {
        OperationStatus status = TryReadVariableByteInteger(ref reader, out int value);
        if (status == OperationStatus.NeedMoreData)
        {
            MqttThrow.Malformed("packet ends inside a Variable Byte Integer");
        }
        if (status != OperationStatus.Done)
        {
            MqttThrow.Malformed("Variable Byte Integer longer than 4 bytes or not encoded in the minimum number of bytes [MQTT-1.5.5-1]");
        }
        return value;
    }

    /// <summary>Decodes a Variable Byte Integer at the reader's position, across segments; advances past it when Done.</summary>
    public static OperationStatus TryReadVariableByteInteger(ref SequenceReader<byte> reader, out int value)
    {
        ReadOnlySpan<byte> span = reader.UnreadSpan;
        OperationStatus status = MqttVariableByteInteger.TryDecode(span, out value, out int consumed);
        if (status == OperationStatus.NeedMoreData && reader.Remaining > span.Length)
        {
            // The integer straddles segments: assemble its (at most 4) bytes.
            Span<byte> buffer = stackalloc byte[MqttVariableByteInteger.MaxSize];
            buffer = buffer[..(int)Math.Min(reader.Remaining, MqttVariableByteInteger.MaxSize)];
            reader.TryCopyTo(buffer);
            status = MqttVariableByteInteger.TryDecode(buffer, out value, out consumed);
        }
        if (status == OperationStatus.Done)
        {
            reader.Advance(consumed);
        }
        return status;
    }

    public static string ReadString(ref SequenceReader<byte> reader)
    {
        int length = ReadUInt16(ref reader);
        if (reader.Remaining < length)
        {
            MqttThrow.Malformed("UTF-8 string longer than the rest of the packet");
        }

        ReadOnlySpan<byte> unread = reader.UnreadSpan;
        if (unread.Length >= length)
        {
            string value = DecodeUtf8(unread[..length]);
            reader.Advance(length);
            return value;
        }
        return ReadStringAcrossSegments(ref reader, length);
    }

    private static string ReadStringAcrossSegments(ref SequenceReader<byte> reader, int length)
    {
        byte[]? rented = null;
        Span<byte> buffer = length <= StackCopyLimit
            ? stackalloc byte[StackCopyLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            buffer = buffer[..length];
            reader.TryCopyTo(buffer);
            reader.Advance(length);
            return DecodeUtf8(buffer);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static string DecodeUtf8(ReadOnlySpan<byte> bytes)
    {
        // UTF-8 encodes U+0000 only as a 0x00 byte (the overlong C0 80 fails validation below).
        if (bytes.Contains((byte)0))
        {
            MqttThrow.Malformed("UTF-8 string contains U+0000 [MQTT-1.5.4-2]");
        }
        // Rejects overlong forms and encoded surrogates (U+D800..U+DFFF) as well.
        if (!Utf8.IsValid(bytes))
        {
            MqttThrow.Malformed("ill-formed UTF-8 string [MQTT-1.5.4-1]");
        }
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Binary Data (5.0 §1.5.6). Copied: the input buffer is recycled once the reader advances.</summary>
    public static byte[] ReadBinary(ref SequenceReader<byte> reader)
    {
        int length = ReadUInt16(ref reader);
        if (reader.Remaining < length)
        {
            MqttThrow.Malformed("Binary Data longer than the rest of the packet");
        }
        if (length == 0)
        {
            return [];
        }
        var data = new byte[length];
        reader.TryCopyTo(data);
        reader.Advance(length);
        return data;
    }

    /// <summary>Encoded size of a UTF-8 Encoded String, length prefix included.</summary>
    public static int StringSize(string value)
    {
        int count = Encoding.UTF8.GetByteCount(value);
        if (count > MaxStringLength)
        {
            ThrowTooLong(nameof(value), count);
        }
        return 2 + count;
    }

    public static int BinarySize(ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxStringLength)
        {
            ThrowTooLong(nameof(value), value.Length);
        }
        return 2 + value.Length;
    }

    [DoesNotReturn]
    public static void ThrowTooLong(string what, int length) =>
        throw new ArgumentException($"{length} bytes do not fit an MQTT length-prefixed field (max {MaxStringLength})", what);

    public static void WriteUInt16(Span<byte> destination, ushort value) =>
        BinaryPrimitives.WriteUInt16BigEndian(destination, value);
}
