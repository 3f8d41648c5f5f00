using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// Writes into an <see cref="IBufferWriter{T}"/> span by span and advances it once per span, in the
/// manner of Kestrel's BufferWriter: the caller has computed every length up front, so there is no
/// back-patching and no intermediate array.
/// </summary>
internal ref struct MqttBufferWriter
{
    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _buffered;

    public MqttBufferWriter(IBufferWriter<byte> output, int sizeHint)
    {
        _output = output;
        _span = output.GetSpan(sizeHint);
        _buffered = 0;
    }

    public void Commit()
    {
        if (_buffered > 0)
        {
            _output.Advance(_buffered);
            _buffered = 0;
        }
        _span = default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Ensure(int count)
    {
        if (_span.Length < count)
        {
            Grow(count);
        }
    }

    private void Grow(int count)
    {
        Commit();
        _span = _output.GetSpan(count);
        if (_span.Length < count)
        {
            throw new InvalidOperationException($"buffer writer returned {_span.Length} bytes when {count} were requested");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Advance(int count)
    {
        _buffered += count;
        _span = _span[count..];
    }

    public void WriteByte(byte value)
    {
        Ensure(1);
        _span[0] = value;
        Advance(1);
    }

    public void WriteUInt16(ushort value)
    {
        Ensure(2);
        BinaryPrimitives.WriteUInt16BigEndian(_span, value);
        Advance(2);
    }

    public void WriteUInt32(uint value)
    {
        Ensure(4);
        BinaryPrimitives.WriteUInt32BigEndian(_span, value);
        Advance(4);
    }

    public void WriteVariableByteInteger(int value)
    {
        int size = MqttWire.VariableByteIntegerSize(value);
        Ensure(size);
        MqttVariableByteInteger.Encode(_span, value);
        Advance(size);
    }

    /// <summary>Fixed header: type/flags byte and Remaining Length.</summary>
    public void WriteFixedHeader(byte typeAndFlags, int remainingLength)
    {
        int size = MqttWire.VariableByteIntegerSize(remainingLength);
        Ensure(1 + size);
        _span[0] = typeAndFlags;
        MqttVariableByteInteger.Encode(_span[1..], remainingLength);
        Advance(1 + size);
    }

    /// <summary>Length-prefixed UTF-8; the size was validated by <see cref="MqttWire.StringSize"/>.</summary>
    public void WriteString(string value)
    {
        int count = Encoding.UTF8.GetByteCount(value);
        Ensure(2 + count);
        BinaryPrimitives.WriteUInt16BigEndian(_span, (ushort)count);
        Encoding.UTF8.GetBytes(value, _span[2..]);
        Advance(2 + count);
    }

    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        WriteUInt16((ushort)value.Length);
        Write(value);
    }

    /// <summary>Raw bytes, spread over as many spans as the output hands out.</summary>
    public void Write(ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            if (_span.IsEmpty)
            {
                Grow(1);
            }
            int n = Math.Min(source.Length, _span.Length);
            source[..n].CopyTo(_span);
            Advance(n);
            source = source[n..];
        }
    }

    public void Write(in ReadOnlySequence<byte> source)
    {
        if (source.IsSingleSegment)
        {
            Write(source.FirstSpan);
            return;
        }
        foreach (ReadOnlyMemory<byte> segment in source)
        {
            Write(segment.Span);
        }
    }
}
