namespace OmniBroker.Mqtt.Packets;

/// <summary>
/// MQTT 5.0 properties (§2.2.2.2). One class for every packet; the codec reads and writes only the
/// identifiers allowed for the packet at hand and rejects the others as a malformed packet.
/// Null / zero means "absent".
/// </summary>
public sealed class MqttProperties
{
    public byte? PayloadFormatIndicator { get; set; }          // 0x01
    public uint? MessageExpiryInterval { get; set; }           // 0x02
    public string? ContentType { get; set; }                   // 0x03
    public string? ResponseTopic { get; set; }                 // 0x08
    public ReadOnlyMemory<byte>? CorrelationData { get; set; } // 0x09
    /// <summary>0x0B; may appear several times in PUBLISH (one per matching subscription).</summary>
    public List<uint>? SubscriptionIdentifiers { get; set; }
    public uint? SessionExpiryInterval { get; set; }           // 0x11
    public string? AssignedClientIdentifier { get; set; }      // 0x12
    public ushort? ServerKeepAlive { get; set; }               // 0x13
    public string? AuthenticationMethod { get; set; }          // 0x15
    public ReadOnlyMemory<byte>? AuthenticationData { get; set; } // 0x16
    public byte? RequestProblemInformation { get; set; }       // 0x17
    public uint? WillDelayInterval { get; set; }               // 0x18
    public byte? RequestResponseInformation { get; set; }      // 0x19
    public string? ResponseInformation { get; set; }           // 0x1A
    public string? ServerReference { get; set; }               // 0x1C
    public string? ReasonString { get; set; }                  // 0x1F
    public ushort? ReceiveMaximum { get; set; }                // 0x21
    public ushort? TopicAliasMaximum { get; set; }             // 0x22
    public ushort? TopicAlias { get; set; }                    // 0x23
    public byte? MaximumQos { get; set; }                      // 0x24
    public byte? RetainAvailable { get; set; }                 // 0x25
    public List<KeyValuePair<string, string>>? UserProperties { get; set; } // 0x26
    public uint? MaximumPacketSize { get; set; }               // 0x27
    public byte? WildcardSubscriptionAvailable { get; set; }   // 0x28
    public byte? SubscriptionIdentifiersAvailable { get; set; } // 0x29
    public byte? SharedSubscriptionAvailable { get; set; }     // 0x2A
}
