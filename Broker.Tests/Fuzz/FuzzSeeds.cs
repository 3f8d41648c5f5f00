using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Codec;

namespace OmniBroker.Tests.Fuzz;

/// <summary>
/// The generated part of the fuzz seed corpus (Broker.Fuzz/corpus): MQTT packets from <see cref="PacketSamples"/>
/// plus edge cases, WebSocket client frames carrying them, PROXY v2 headers, and policy edge cases. The OCSP and CRL
/// seeds come from openssl (Broker.Fuzz/corpus/make-revocation-seeds.sh); the shipped policies are copied.
/// Regenerate with <c>OMNIBROKER_WRITE_FUZZ_CORPUS=1 dotnet test --filter FuzzCorpusTests</c>.
/// </summary>
internal static class FuzzSeeds
{
    public static IEnumerable<(string Target, string Name, byte[] Bytes)> All() =>
        Mqtt(MqttProtocolVersion.V311, "mqtt311").Concat(Mqtt(MqttProtocolVersion.V500, "mqtt5"))
            .Concat(WebSocket()).Concat(Proxy()).Concat(Policy());

    private static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, packet, version);
        return output.WrittenSpan.ToArray();
    }

    private static IEnumerable<(string, string, byte[])> Mqtt(MqttProtocolVersion version, string target)
    {
        foreach (string name in PacketSamples.Names.Where(n => version == MqttProtocolVersion.V500 || n != "AUTH"))
        {
            yield return (target, name.ToLowerInvariant() + ".bin", Encode(PacketSamples.Create(name, version), version));
        }
        // A whole client session: CONNECT, then what a client sends after it.
        byte[] session = [.. new[] { "CONNECT", "SUBSCRIBE", "PUBLISH-qos1", "PUBLISH-qos2-dup-retain", "PUBREL", "PUBACK", "UNSUBSCRIBE", "PINGREQ", "DISCONNECT" }
            .SelectMany(n => Encode(PacketSamples.Create(n, version), version))];
        yield return (target, "session.bin", session);
        yield return (target, "edge-remaining-length-max.bin", [0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
        yield return (target, "edge-remaining-length-5-bytes.bin", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        yield return (target, "edge-remaining-length-not-minimal.bin", [0xC0, 0x80, 0x00]);
        yield return (target, "edge-publish-empty-topic.bin", [0x30, 0x02, 0x00, 0x00]);
        yield return (target, "edge-reserved-type-0.bin", [0x00, 0x00]);
        yield return (target, "edge-connect-bad-protocol-name.bin", [0x10, 0x0C, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'X', (byte)version, 0x02, 0x00, 0x3C, 0x00, 0x00]);
    }

    /// <summary>A client-to-server frame: always masked (RFC 6455 §5.3), length in the shortest or a forced form.</summary>
    private static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, bool fin = true, bool masked = true, int lengthForm = 0, byte rsv = 0)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | rsv | opcode) };
        byte maskBit = masked ? (byte)0x80 : (byte)0;
        if (lengthForm == 0 && payload.Length < 126)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else if (lengthForm <= 16 && payload.Length <= 0xFFFF)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            frame.AddRange(length.ToArray());
        }
        byte[] key = [0x37, 0xFA, 0x21, 0x3D];
        if (masked)
        {
            frame.AddRange(key);
        }
        for (int i = 0; i < payload.Length; i++)
        {
            frame.Add(masked ? (byte)(payload[i] ^ key[i % 4]) : payload[i]);
        }
        return [.. frame];
    }

    private static IEnumerable<(string, string, byte[])> WebSocket()
    {
        const string t = "websocket";
        var v5 = MqttProtocolVersion.V500;
        byte[] connect = Encode(PacketSamples.Create("CONNECT", v5), v5);
        byte[] publish = Encode(PacketSamples.Create("PUBLISH-qos1", v5), v5);
        byte[] disconnect = Encode(PacketSamples.Create("DISCONNECT", v5), v5);
        byte[] ping = Encode(PacketSamples.Create("PINGREQ", v5), v5);
        byte[] closeNormal = Frame(0x8, [0x03, 0xE8]);
        yield return (t, "connect-close.bin", [.. Frame(0x2, connect), .. closeNormal]);
        yield return (t, "connect-fragmented.bin", [.. Frame(0x2, connect.AsSpan(0, 10), fin: false), .. Frame(0x0, connect.AsSpan(10)), .. closeNormal]);
        yield return (t, "ping-inside-fragments.bin", [.. Frame(0x2, connect.AsSpan(0, 5), fin: false), .. Frame(0x9, "hi"u8), .. Frame(0x0, connect.AsSpan(5)), .. closeNormal]);
        yield return (t, "packets-across-frames.bin", [.. Frame(0x2, [.. connect, .. publish.AsSpan(0, 7)]), .. Frame(0x2, [.. publish.AsSpan(7), .. ping, .. disconnect]), .. Frame(0x8, [])]);
        yield return (t, "length-16-bit.bin", [.. Frame(0x2, [.. connect, .. Enumerable.Repeat(ping, 60).SelectMany(p => p)], lengthForm: 16), .. closeNormal]);
        yield return (t, "length-64-bit.bin", [.. Frame(0x2, ping, lengthForm: 64), .. closeNormal]);
        yield return (t, "text-message.bin", [.. Frame(0x1, "CONNECT"u8), .. closeNormal]);
        yield return (t, "unmasked.bin", Frame(0x2, connect, masked: false));
        yield return (t, "reserved-bits.bin", Frame(0x2, ping, rsv: 0x40));
        yield return (t, "close-with-reason.bin", [.. Frame(0x2, connect), .. Frame(0x8, [0x03, 0xEA, .. "bye"u8])]);
        yield return (t, "pong-then-eof.bin", [.. Frame(0x2, connect), .. Frame(0xA, [])]);
        yield return (t, "malformed-mqtt.bin", [.. Frame(0x2, [0x00, 0x00]), .. closeNormal]);
    }

    private static byte[] ProxyHeader(byte versionCommand, byte familyTransport, ReadOnlySpan<byte> addresses, ReadOnlySpan<byte> after = default)
    {
        byte[] signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
        return [.. signature, versionCommand, familyTransport, (byte)(addresses.Length >> 8), (byte)addresses.Length, .. addresses, .. after];
    }

    private static IEnumerable<(string, string, byte[])> Proxy()
    {
        const string t = "proxyv2";
        byte[] tcp4 = [192, 0, 2, 10, 10, 0, 0, 1, 0xC3, 0x50, 0x22, 0xB3];
        byte[] tcp6 = [.. Enumerable.Range(0, 16).Select(i => (byte)(0x20 + i)), .. Enumerable.Range(0, 16).Select(i => (byte)(0x40 + i)), 0xC3, 0x50, 0x22, 0xB3];
        byte[] tlv = [0x01, 0x00, 0x04, (byte)'m', (byte)'q', (byte)'t', (byte)'t', 0x04, 0x00, 0x00];
        byte[] clientHello = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00];
        yield return (t, "tcp4.bin", ProxyHeader(0x21, 0x11, tcp4, clientHello));
        yield return (t, "tcp4-tlvs.bin", ProxyHeader(0x21, 0x11, [.. tcp4, .. tlv]));
        yield return (t, "tcp6.bin", ProxyHeader(0x21, 0x21, tcp6));
        yield return (t, "unix.bin", ProxyHeader(0x21, 0x31, new byte[216]));
        yield return (t, "local.bin", ProxyHeader(0x20, 0x00, []));
        yield return (t, "unspec.bin", ProxyHeader(0x21, 0x00, tlv));
        yield return (t, "udp4.bin", ProxyHeader(0x21, 0x12, tcp4));
        yield return (t, "tcp4-short.bin", ProxyHeader(0x21, 0x11, tcp4.AsSpan(0, 8)));
        yield return (t, "truncated.bin", ProxyHeader(0x21, 0x11, tcp4)[..20]);
        yield return (t, "version-1-text.bin", "PROXY TCP4 192.0.2.10 10.0.0.1 50000 8883\r\n"u8.ToArray());
        yield return (t, "tls-without-header.bin", clientHello);
    }

    private static IEnumerable<(string, string, byte[])> Policy()
    {
        const string t = "policy";
        static (string, string, byte[]) Yaml(string name, string text) => (t, name, Encoding.UTF8.GetBytes(text));
        yield return Yaml("edge-conditions.yaml", """
            version: 1
            extensions:
              deviceType: 1.3.6.1.4.1.59999.1.1
            rules:
              - id: all-conditions
                effect: allow
                actions: [connect, publish, subscribe, receive]
                match:
                  cert.cn: { anyOf: [device-1, device-2] }
                  cert.ou: { absent: true }
                  cert.san.uri: { present: false }
                  cert.o: { prefix: [Omni, Acme] }
                  cert.ext.deviceType: { glob: 'sensor-?*' }
                  client.id: { equals: device-1 }
                clientId: ${cert.cn}
                topics: ["devices/${cert.cn}/+/#", "fleet/${client.id}", "$share/g/x"]
                maxQos: 2
                retain: true
              - id: deny-wide
                effect: deny
                actions: [subscribe]
                topics: ['#', '+/+']
            """);
        yield return Yaml("edge-yaml-features.yaml", """
            %YAML 1.2
            ---
            version: 1
            defaults: &d { effect: allow, actions: [publish] }
            rules:
              - <<: *d
                id: "quoted \u00e9 \t id"
                topics: [ 'a/b', "c/${cert.cn}" ]
              - { id: flow, effect: deny, actions: [receive], topics: [x/#], description: |
                  multi
                  line }
            ...
            --- 
            rules: []
            """);
        yield return Yaml("edge-errors.yaml", """
            version: 2
            rules:
              - id: dup
                effect: maybe
                actions: [connect, teleport]
                topics: ["a/#/b", "${cert.nope}", ""]
                maxQos: 3
              - id: dup
                match: { cert.unknown: x, client.id: { glob: '[' } }
            """);
        yield return Yaml("edge-empty.yaml", "");
        yield return Yaml("edge-not-a-mapping.yaml", "- just\n- a list\n");
        yield return Yaml("edge-tabs-and-bom.yaml", "\uFEFFversion: 1\nrules:\n\t- id: x\n");
        yield return Yaml("edge-deep-nesting.yaml", "rules: " + new string('[', 200) + new string(']', 200) + "\n");
    }
}
