namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Topic aliases the broker assigns to the PUBLISH packets it sends to one 5.0 connection (5.0 §3.3.2.3.4).
/// The client announces how many it accepts (CONNECT Topic Alias Maximum); the broker never sends an alias above that
/// [MQTT-3.3.2-11] and none at all when the client announced none [MQTT-3.3.2-12]; the broker's own bound
/// (<see cref="MqttBrokerOptions.OutboundTopicAliasMaximum"/>) caps the memory a connection may hold.
/// Policy: the first topics sent get the aliases, in order, and keep them for the life of the connection (aliases do
/// not survive a reconnect [MQTT-3.3.2-7]); once the table is full, other topics go out in full. No eviction: a
/// reassigned alias would have to resend the topic anyway, and a stable table needs no bookkeeping per message.
/// Used by the connection's single writer only (not thread-safe).
/// </summary>
internal sealed class OutboundTopicAliases
{
    private readonly Dictionary<string, ushort> _aliases = new(StringComparer.Ordinal);
    private readonly ushort _maximum;

    private OutboundTopicAliases(ushort maximum) => _maximum = maximum;

    /// <summary>Aliases assigned so far.</summary>
    public int Count => _aliases.Count;

    /// <summary>A table for a connection, or null when no alias may be sent (3.1.1, the client accepts none, or the
    /// broker's bound is 0).</summary>
    public static OutboundTopicAliases? Create(ushort clientMaximum, ushort brokerMaximum)
    {
        var maximum = Math.Min(clientMaximum, brokerMaximum);
        return maximum == 0 ? null : new OutboundTopicAliases(maximum);
    }

    /// <summary>
    /// The alias to send <paramref name="topic"/> with: an alias the client already knows
    /// (<paramref name="known"/> true: send an empty topic name with it), the next free alias (<paramref name="known"/>
    /// false: send the topic name with it, then <see cref="Establish"/> once the packet is really written), or 0 when
    /// the table is full (send the topic name, no alias).
    /// </summary>
    public ushort Lookup(string topic, out bool known)
    {
        if (_aliases.TryGetValue(topic, out var alias))
        {
            known = true;
            return alias;
        }
        known = false;
        return _aliases.Count < _maximum ? (ushort)(_aliases.Count + 1) : (ushort)0;
    }

    /// <summary>Records that a PUBLISH carrying both <paramref name="topic"/> and the new <paramref name="alias"/>
    /// from <see cref="Lookup"/> was written: from now on the client maps the alias to the topic.</summary>
    public void Establish(string topic, ushort alias)
    {
        if (alias != _aliases.Count + 1 || alias > _maximum)
        {
            throw new InvalidOperationException($"alias {alias} is not the next free alias");
        }
        _aliases.Add(topic, alias);
    }
}
