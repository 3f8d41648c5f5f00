using System.Buffers;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Tests.Codec;

/// <summary>
/// One sample of every control packet, in a 3.1.1 shape and a 5.0 shape with every property the
/// packet admits populated. Strings include non-ASCII text so multi-byte UTF-8 crosses segment cuts.
/// </summary>
internal static class PacketSamples
{
    public static readonly string[] Names =
    [
        "CONNECT", "CONNECT-minimal", "CONNACK", "CONNACK-refused", "PUBLISH-qos0", "PUBLISH-qos1", "PUBLISH-qos2-dup-retain",
        "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
    ];

    private static List<KeyValuePair<string, string>> UserProperties() =>
        [new("région", "Zürich"), new("dup-key", "1"), new("dup-key", "2"), new("", "")];

    public static MqttPacket Create(string name, MqttProtocolVersion version)
    {
        bool v5 = version == MqttProtocolVersion.V500;
        return name switch
        {
            "CONNECT" => new ConnectPacket
            {
                ProtocolVersion = version,
                ClientId = "sensor-ü-42",
                CleanStart = false,
                KeepAliveSeconds = 300,
                UserName = "dévice",
                Password = new byte[] { 0, 1, 2, 0xFF },
                Will = new WillMessage
                {
                    Topic = "devices/42/status",
                    Payload = "offline"u8.ToArray(),
                    Qos = MqttQos.ExactlyOnce,
                    Retain = true,
                    Properties = v5
                        ? new MqttProperties
                        {
                            WillDelayInterval = 30,
                            PayloadFormatIndicator = 1,
                            MessageExpiryInterval = 3600,
                            ContentType = "text/plain",
                            ResponseTopic = "devices/42/reply",
                            CorrelationData = new byte[] { 9, 8, 7 },
                            UserProperties = UserProperties(),
                        }
                        : null,
                },
                Properties = v5
                    ? new MqttProperties
                    {
                        SessionExpiryInterval = 0xFFFFFFFF,
                        ReceiveMaximum = 20,
                        MaximumPacketSize = 1 << 20,
                        TopicAliasMaximum = 10,
                        RequestResponseInformation = 1,
                        RequestProblemInformation = 0,
                        UserProperties = UserProperties(),
                        AuthenticationMethod = "SCRAM-SHA-256",
                        AuthenticationData = new byte[] { 0xA, 0xB },
                    }
                    : null,
            },
            "CONNECT-minimal" => new ConnectPacket { ProtocolVersion = version, ClientId = "", CleanStart = true },
            "CONNACK" => new ConnAckPacket
            {
                SessionPresent = true,
                ReasonCode = MqttReasonCode.Success,
                Properties = v5
                    ? new MqttProperties
                    {
                        SessionExpiryInterval = 60,
                        ReceiveMaximum = 100,
                        MaximumQos = 1,
                        RetainAvailable = 0,
                        MaximumPacketSize = 65536,
                        AssignedClientIdentifier = "auto-7f3a",
                        TopicAliasMaximum = 16,
                        ReasonString = "welcome",
                        UserProperties = UserProperties(),
                        WildcardSubscriptionAvailable = 1,
                        SubscriptionIdentifiersAvailable = 1,
                        SharedSubscriptionAvailable = 0,
                        ServerKeepAlive = 120,
                        ResponseInformation = "replies/",
                        ServerReference = "other.example:8883",
                        AuthenticationMethod = "SCRAM-SHA-256",
                        AuthenticationData = new byte[] { 1, 2, 3 },
                    }
                    : null,
            },
            "CONNACK-refused" => new ConnAckPacket { SessionPresent = false, ReasonCode = MqttReasonCode.NotAuthorized },
            "PUBLISH-qos0" => new PublishPacket
            {
                Topic = "a/b",
                Qos = MqttQos.AtMostOnce,
                Payload = new ReadOnlySequence<byte>("hello"u8.ToArray()),
            },
            "PUBLISH-qos1" => new PublishPacket
            {
                Topic = "sensors/température/ü",
                Qos = MqttQos.AtLeastOnce,
                PacketId = 0xBEEF,
                Payload = new ReadOnlySequence<byte>(Enumerable.Range(0, 300).Select(i => (byte)i).ToArray()),
                Properties = v5
                    ? new MqttProperties
                    {
                        PayloadFormatIndicator = 0,
                        MessageExpiryInterval = 120,
                        ContentType = "application/octet-stream",
                        ResponseTopic = "reply/here",
                        CorrelationData = new byte[] { 0xC0, 0xFF, 0xEE },
                        SubscriptionIdentifiers = [1, 127, 128, 16383, 16384, 268_435_455],
                        TopicAlias = 3,
                        UserProperties = UserProperties(),
                    }
                    : null,
            },
            "PUBLISH-qos2-dup-retain" => new PublishPacket
            {
                Topic = "$SYS/x",
                Qos = MqttQos.ExactlyOnce,
                Dup = true,
                Retain = true,
                PacketId = 1,
                Payload = ReadOnlySequence<byte>.Empty,
            },
            "PUBACK" => Ack(MqttPacketType.PubAck, v5 ? MqttReasonCode.NoMatchingSubscribers : MqttReasonCode.Success, v5),
            "PUBREC" => Ack(MqttPacketType.PubRec, v5 ? MqttReasonCode.QuotaExceeded : MqttReasonCode.Success, v5),
            "PUBREL" => Ack(MqttPacketType.PubRel, v5 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success, v5),
            "PUBCOMP" => Ack(MqttPacketType.PubComp, MqttReasonCode.Success, v5),
            "SUBSCRIBE" => new SubscribePacket
            {
                PacketId = 10,
                Subscriptions =
                [
                    new("a/+/c", new SubscriptionOptions(MqttQos.AtMostOnce)),
                    new("sport/#", new SubscriptionOptions(MqttQos.AtLeastOnce,
                        NoLocal: v5, RetainAsPublished: v5, v5 ? MqttRetainHandling.DoNotSend : MqttRetainHandling.SendAtSubscribe)),
                    new("$share/group/ü/#", new SubscriptionOptions(MqttQos.ExactlyOnce,
                        RetainHandling: v5 ? MqttRetainHandling.SendAtSubscribeIfNew : MqttRetainHandling.SendAtSubscribe)),
                ],
                Properties = v5 ? new MqttProperties { SubscriptionIdentifiers = [268_435_455], UserProperties = UserProperties() } : null,
            },
            "SUBACK" => new SubAckPacket
            {
                PacketId = 10,
                ReasonCodes = v5
                    ? [MqttReasonCode.Success, MqttReasonCode.GrantedQos1, MqttReasonCode.GrantedQos2, MqttReasonCode.NotAuthorized,
                        MqttReasonCode.SharedSubscriptionsNotSupported, MqttReasonCode.WildcardSubscriptionsNotSupported]
                    : [MqttReasonCode.Success, MqttReasonCode.GrantedQos1, MqttReasonCode.GrantedQos2, MqttReasonCode.UnspecifiedError],
                Properties = v5 ? new MqttProperties { ReasonString = "partly", UserProperties = UserProperties() } : null,
            },
            "UNSUBSCRIBE" => new UnsubscribePacket
            {
                PacketId = 11,
                Filters = ["a/+/c", "sport/#", "$share/g/x"],
                Properties = v5 ? new MqttProperties { UserProperties = UserProperties() } : null,
            },
            "UNSUBACK" => new UnsubAckPacket
            {
                PacketId = 11,
                ReasonCodes = v5 ? [MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted, MqttReasonCode.TopicFilterInvalid] : [],
                Properties = v5 ? new MqttProperties { ReasonString = "done", UserProperties = UserProperties() } : null,
            },
            "PINGREQ" => PingReqPacket.Instance,
            "PINGRESP" => PingRespPacket.Instance,
            "DISCONNECT" => v5
                ? new DisconnectPacket
                {
                    ReasonCode = MqttReasonCode.DisconnectWithWillMessage,
                    Properties = new MqttProperties
                    {
                        SessionExpiryInterval = 10,
                        ReasonString = "bye",
                        UserProperties = UserProperties(),
                        ServerReference = "elsewhere",
                    },
                }
                : new DisconnectPacket(),
            "AUTH" => new AuthPacket
            {
                ReasonCode = MqttReasonCode.ContinueAuthentication,
                Properties = new MqttProperties
                {
                    AuthenticationMethod = "SCRAM-SHA-256",
                    AuthenticationData = new byte[] { 4, 5, 6 },
                    ReasonString = "more",
                    UserProperties = UserProperties(),
                },
            },
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
    }

    private static PubAckPacket Ack(MqttPacketType type, MqttReasonCode code, bool v5) => new(type)
    {
        PacketId = 0x1234,
        ReasonCode = code,
        Properties = v5 ? new MqttProperties { ReasonString = "because", UserProperties = UserProperties() } : null,
    };
}
