using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace OmniBroker.Cluster;

/// <summary>The fields of the cluster's wire forms (<see cref="MessageCodec"/>, <see cref="Replica.ReplicaCodec"/>):
/// little-endian integers, byte strings and UTF-8 strings prefixed with their 32-bit length (-1: a null string).</summary>
internal static class Wire
{
    public static void Byte(ArrayBufferWriter<byte> writer, byte value)
    {
        writer.GetSpan(1)[0] = value;
        writer.Advance(1);
    }

    public static void UInt16(ArrayBufferWriter<byte> writer, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(writer.GetSpan(2), value);
        writer.Advance(2);
    }

    public static void Int(ArrayBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    public static void UInt32(ArrayBufferWriter<byte> writer, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    public static void Int64(ArrayBufferWriter<byte> writer, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(writer.GetSpan(8), value);
        writer.Advance(8);
    }

    public static void Bytes(ArrayBufferWriter<byte> writer, ReadOnlySpan<byte> value)
    {
        Int(writer, value.Length);
        writer.Write(value);
    }

    /// <summary>A string; null is written as length -1 (read back by <see cref="WireReader.TryNullableString"/>).</summary>
    public static void String(ArrayBufferWriter<byte> writer, string? value)
    {
        if (value is null)
        {
            Int(writer, -1);
            return;
        }
        var count = Encoding.UTF8.GetByteCount(value);
        Int(writer, count);
        Encoding.UTF8.GetBytes(value, writer.GetSpan(count));
        writer.Advance(count);
    }
}

/// <summary>Reads <see cref="Wire"/> fields; every read says false instead of reading past the end or accepting a
/// length that does not fit.</summary>
internal ref struct WireReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _rest = data;

    public readonly bool AtEnd => _rest.IsEmpty;

    public bool TryByte(out byte value)
    {
        value = 0;
        if (_rest.Length < 1) return false;
        value = _rest[0];
        _rest = _rest[1..];
        return true;
    }

    public bool TryUInt16(out ushort value)
    {
        value = 0;
        if (_rest.Length < 2) return false;
        value = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        _rest = _rest[2..];
        return true;
    }

    public bool TryInt(out int value)
    {
        value = 0;
        if (_rest.Length < 4) return false;
        value = BinaryPrimitives.ReadInt32LittleEndian(_rest);
        _rest = _rest[4..];
        return true;
    }

    public bool TryUInt32(out uint value)
    {
        value = 0;
        if (_rest.Length < 4) return false;
        value = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
        _rest = _rest[4..];
        return true;
    }

    public bool TryInt64(out long value)
    {
        value = 0;
        if (_rest.Length < 8) return false;
        value = BinaryPrimitives.ReadInt64LittleEndian(_rest);
        _rest = _rest[8..];
        return true;
    }

    /// <summary>A byte string as a slice of the input.</summary>
    public bool TrySpan(out ReadOnlySpan<byte> value)
    {
        value = default;
        if (!TryInt(out var length) || length < 0 || length > _rest.Length) return false;
        value = _rest[..length];
        _rest = _rest[length..];
        return true;
    }

    /// <summary>A byte string, copied.</summary>
    public bool TryBytes(out byte[]? value)
    {
        value = null;
        if (!TrySpan(out var span)) return false;
        value = span.ToArray();
        return true;
    }

    /// <summary>A string that must be there (length -1 is refused).</summary>
    public bool TryString(out string? value)
    {
        value = null;
        if (!TrySpan(out var span)) return false;
        value = Encoding.UTF8.GetString(span);
        return true;
    }

    /// <summary>A string or null (length -1).</summary>
    public bool TryNullableString(out string? value)
    {
        value = null;
        if (!TryInt(out var length) || length < -1 || length > _rest.Length) return false;
        if (length == -1) return true;
        value = Encoding.UTF8.GetString(_rest[..length]);
        _rest = _rest[length..];
        return true;
    }
}
