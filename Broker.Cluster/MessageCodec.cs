using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Cluster;

/// <summary>
/// The wire form of an application message between nodes (inbox streams, retained and will buckets): a version byte,
/// flags, then length-prefixed fields. Compact and copy-once; a value that does not decode is reported, not guessed.
/// </summary>
internal static class MessageCodec
{
    private const byte Version = 1;

    [Flags]
    private enum Fields : ushort
    {
        None = 0,
        Retain = 1,
        Publisher = 2,
        Expires = 4,
        PayloadFormat = 8,
        ContentType = 16,
        ResponseTopic = 32,
        Correlation = 64,
        UserProperties = 128,
    }

    public static byte[] Encode(StoredMessage message)
    {
        var writer = new ArrayBufferWriter<byte>(64 + message.Payload.Length + message.Topic.Length * 3);
        var fields = (message.Retain ? Fields.Retain : 0) | (message.PublisherClientId is not null ? Fields.Publisher : 0)
            | (message.ExpiresAt is not null ? Fields.Expires : 0) | (message.PayloadFormatIndicator is not null ? Fields.PayloadFormat : 0)
            | (message.ContentType is not null ? Fields.ContentType : 0) | (message.ResponseTopic is not null ? Fields.ResponseTopic : 0)
            | (message.CorrelationData is not null ? Fields.Correlation : 0) | (message.UserProperties is { Count: > 0 } ? Fields.UserProperties : 0);
        WriteByte(writer, Version);
        WriteByte(writer, message.Qos);
        BinaryPrimitives.WriteUInt16LittleEndian(writer.GetSpan(2), (ushort)fields);
        writer.Advance(2);
        WriteString(writer, message.Topic);
        WriteBytes(writer, message.Payload);
        if (message.PublisherClientId is { } publisher) WriteString(writer, publisher);
        if (message.ExpiresAt is { } expires)
        {
            BinaryPrimitives.WriteInt64LittleEndian(writer.GetSpan(8), expires.ToUnixTimeMilliseconds());
            writer.Advance(8);
        }
        if (message.PayloadFormatIndicator is { } format) WriteByte(writer, format);
        if (message.ContentType is { } contentType) WriteString(writer, contentType);
        if (message.ResponseTopic is { } responseTopic) WriteString(writer, responseTopic);
        if (message.CorrelationData is { } correlation) WriteBytes(writer, correlation);
        if (message.UserProperties is { Count: > 0 } user)
        {
            WriteInt(writer, user.Count);
            foreach (var pair in user)
            {
                WriteString(writer, pair.Key);
                WriteString(writer, pair.Value);
            }
        }
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes <paramref name="data"/>; false when it is not a message of this version (truncated, foreign).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out StoredMessage? message)
    {
        message = null;
        var reader = new Reader(data);
        if (!reader.TryByte(out var version) || version != Version || !reader.TryByte(out var qos) || qos > 2
            || !reader.TryUInt16(out var rawFields) || !reader.TryString(out var topic) || !reader.TryBytes(out var payload))
        {
            return false;
        }
        var fields = (Fields)rawFields;
        string? publisher = null, contentType = null, responseTopic = null;
        DateTimeOffset? expires = null;
        byte? format = null;
        byte[]? correlation = null;
        List<KeyValuePair<string, string>>? user = null;
        if (fields.HasFlag(Fields.Publisher) && !reader.TryString(out publisher)) return false;
        if (fields.HasFlag(Fields.Expires))
        {
            if (!reader.TryInt64(out var ms)) return false;
            expires = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        }
        if (fields.HasFlag(Fields.PayloadFormat))
        {
            if (!reader.TryByte(out var f)) return false;
            format = f;
        }
        if (fields.HasFlag(Fields.ContentType) && !reader.TryString(out contentType)) return false;
        if (fields.HasFlag(Fields.ResponseTopic) && !reader.TryString(out responseTopic)) return false;
        if (fields.HasFlag(Fields.Correlation) && !reader.TryBytes(out correlation)) return false;
        if (fields.HasFlag(Fields.UserProperties))
        {
            if (!reader.TryInt(out var count) || count < 0 || count > 65535) return false;
            user = new List<KeyValuePair<string, string>>(count);
            for (var i = 0; i < count; i++)
            {
                if (!reader.TryString(out var key) || !reader.TryString(out var value)) return false;
                user.Add(new(key!, value!));
            }
        }
        message = new StoredMessage(topic!, payload!, qos, fields.HasFlag(Fields.Retain), publisher, expires, format, contentType,
            responseTopic, correlation, user);
        return true;
    }

    private static void WriteByte(ArrayBufferWriter<byte> writer, byte value)
    {
        writer.GetSpan(1)[0] = value;
        writer.Advance(1);
    }

    private static void WriteInt(ArrayBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    private static void WriteBytes(ArrayBufferWriter<byte> writer, ReadOnlySpan<byte> value)
    {
        WriteInt(writer, value.Length);
        writer.Write(value);
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteInt(writer, count);
        Encoding.UTF8.GetBytes(value, writer.GetSpan(count));
        writer.Advance(count);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

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

        public bool TryInt64(out long value)
        {
            value = 0;
            if (_rest.Length < 8) return false;
            value = BinaryPrimitives.ReadInt64LittleEndian(_rest);
            _rest = _rest[8..];
            return true;
        }

        public bool TryBytes(out byte[]? value)
        {
            value = null;
            if (!TryInt(out var length) || length < 0 || length > _rest.Length) return false;
            value = _rest[..length].ToArray();
            _rest = _rest[length..];
            return true;
        }

        public bool TryString(out string? value)
        {
            value = null;
            if (!TryInt(out var length) || length < 0 || length > _rest.Length) return false;
            value = Encoding.UTF8.GetString(_rest[..length]);
            _rest = _rest[length..];
            return true;
        }
    }
}
