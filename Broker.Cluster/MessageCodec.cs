using System.Buffers;
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
        Wire.Byte(writer, Version);
        Wire.Byte(writer, message.Qos);
        Wire.UInt16(writer, (ushort)fields);
        Wire.String(writer, message.Topic);
        Wire.Bytes(writer, message.Payload);
        if (message.PublisherClientId is { } publisher) Wire.String(writer, publisher);
        if (message.ExpiresAt is { } expires)
        {
            Wire.Int64(writer, expires.ToUnixTimeMilliseconds());
        }
        if (message.PayloadFormatIndicator is { } format) Wire.Byte(writer, format);
        if (message.ContentType is { } contentType) Wire.String(writer, contentType);
        if (message.ResponseTopic is { } responseTopic) Wire.String(writer, responseTopic);
        if (message.CorrelationData is { } correlation) Wire.Bytes(writer, correlation);
        if (message.UserProperties is { Count: > 0 } user)
        {
            Wire.Int(writer, user.Count);
            foreach (var pair in user)
            {
                Wire.String(writer, pair.Key);
                Wire.String(writer, pair.Value);
            }
        }
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes <paramref name="data"/>; false when it is not a message of this version (truncated, foreign).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out StoredMessage? message)
    {
        message = null;
        var reader = new WireReader(data);
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
}
