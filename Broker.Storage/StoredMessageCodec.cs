using System.Buffers.Binary;
using System.Text;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Storage;

/// <summary>Compact blobs for the optional parts of a message: its 5.0 properties and subscription identifiers. A
/// message without them stores NULL.</summary>
internal static class StoredMessageCodec
{
    private const byte Version = 1;

    public static byte[]? EncodeProperties(StoredMessage message)
    {
        if (message.PayloadFormatIndicator is null && message.ContentType is null && message.ResponseTopic is null
            && message.CorrelationData is null && message.UserProperties is not { Count: > 0 })
        {
            return null;
        }
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Version);
            writer.Write((short)(message.PayloadFormatIndicator ?? -1));
            WriteString(writer, message.ContentType);
            WriteString(writer, message.ResponseTopic);
            writer.Write(message.CorrelationData is null ? -1 : message.CorrelationData.Length);
            if (message.CorrelationData is not null)
            {
                writer.Write(message.CorrelationData);
            }
            var user = message.UserProperties ?? [];
            writer.Write(user.Count);
            foreach (var (key, value) in user)
            {
                writer.Write(key);
                writer.Write(value);
            }
        }
        return stream.ToArray();
    }

    public static StoredMessage DecodeProperties(StoredMessage message, byte[]? blob)
    {
        if (blob is null)
        {
            return message;
        }
        using var reader = new BinaryReader(new MemoryStream(blob), Encoding.UTF8);
        if (reader.ReadByte() != Version)
        {
            throw new InvalidDataException("unknown message properties encoding");
        }
        var format = reader.ReadInt16();
        var contentType = ReadString(reader);
        var responseTopic = ReadString(reader);
        var correlationLength = reader.ReadInt32();
        var correlation = correlationLength < 0 ? null : reader.ReadBytes(correlationLength);
        var count = reader.ReadInt32();
        List<KeyValuePair<string, string>>? user = count > 0 ? new(count) : null;
        for (var i = 0; i < count; i++)
        {
            user!.Add(new(reader.ReadString(), reader.ReadString()));
        }
        return message with
        {
            PayloadFormatIndicator = format < 0 ? null : (byte)format,
            ContentType = contentType,
            ResponseTopic = responseTopic,
            CorrelationData = correlation,
            UserProperties = user,
        };
    }

    public static byte[]? EncodeIds(uint[]? ids)
    {
        if (ids is not { Length: > 0 })
        {
            return null;
        }
        var bytes = new byte[ids.Length * 4];
        for (var i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), ids[i]);
        }
        return bytes;
    }

    public static uint[]? DecodeIds(byte[]? bytes)
    {
        if (bytes is not { Length: >= 4 })
        {
            return null;
        }
        var ids = new uint[bytes.Length / 4];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        }
        return ids;
    }

    public static long? ToUnixMs(DateTimeOffset? time) => time?.ToUnixTimeMilliseconds();

    public static DateTimeOffset? FromUnixMs(object value) => value is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    private static void WriteString(BinaryWriter writer, string? value)
    {
        writer.Write(value is not null);
        if (value is not null)
        {
            writer.Write(value);
        }
    }

    private static string? ReadString(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;
}
