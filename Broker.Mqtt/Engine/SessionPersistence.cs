using System.Security.Cryptography.X509Certificates;
using System.Text;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>Who the session belongs to, as needed to re-authorize it after a restart: protocol version, user name and
/// the validated certificate chain (leaf first). The PEM text is built once, only for persistent sessions.</summary>
internal sealed class SessionIdentity
{
    private string? _pem;
    private readonly IReadOnlyList<X509Certificate2>? _chain;

    private SessionIdentity(MqttProtocolVersion version, string? userName, IReadOnlyList<X509Certificate2>? chain, string? pem)
    {
        ProtocolVersion = version;
        UserName = userName;
        _chain = chain;
        _pem = pem;
    }

    public MqttProtocolVersion ProtocolVersion { get; }

    public string? UserName { get; }

    public string? ChainPem
    {
        get
        {
            if (_pem is null && _chain is { Count: > 0 } chain)
            {
                var text = new StringBuilder();
                foreach (var certificate in chain)
                {
                    text.Append(certificate.ExportCertificatePem()).Append('\n');
                }
                _pem = text.ToString();
            }
            return _pem;
        }
    }

    public static SessionIdentity Of(MqttConnection connection)
    {
        IReadOnlyList<X509Certificate2>? chain = connection.CertificateChain;
        if (chain is not { Count: > 0 } && connection.Certificate is { } leaf)
        {
            chain = [leaf];
        }
        return new SessionIdentity(connection.ProtocolVersion, connection.ClientInfo?.UserName, chain, null);
    }

    public static SessionIdentity FromStored(StoredSession row) =>
        new((MqttProtocolVersion)row.ProtocolVersion, row.UserName, null, row.CertificateChainPem);
}

/// <summary>Conversions of a delayed will to and from its persisted form.</summary>
internal static class WillStates
{
    public static StoredWill ToStored(PendingWill pending) =>
        new(Message(pending.Will, pending.DueAt), pending.Will.DelaySeconds, pending.DueAt);

    /// <summary>The will of a connection still open: no due time yet. Its Message Expiry Interval, which starts when the
    /// will is published, is kept as an expiry relative to the Unix epoch.</summary>
    public static StoredWill ToStoredConnected(WillState will) => new(Message(will, DateTimeOffset.UnixEpoch), will.DelaySeconds, null);

    private static StoredMessage Message(WillState will, DateTimeOffset publishedAt)
    {
        var properties = will.Properties;
        // The Message Expiry Interval of a will starts when it is published, i.e. when it falls due.
        DateTimeOffset? expiresAt = properties?.MessageExpiryInterval is { } seconds ? publishedAt.AddSeconds(seconds) : null;
        return new StoredMessage(will.Topic, will.Payload, (byte)will.Qos, will.Retain, will.ClientId, expiresAt,
            properties?.PayloadFormatIndicator, properties?.ContentType, properties?.ResponseTopic, properties?.CorrelationData?.ToArray(),
            properties?.UserProperties);
    }

    /// <summary>A persisted will; one without a due time (its connection was open when the broker stopped) falls due
    /// its delay after <paramref name="restartedAt"/>: the client could not reconnect while the broker was down.</summary>
    public static PendingWill FromStored(string clientId, StoredWill stored, IClientGrants grants, DateTimeOffset restartedAt)
    {
        var message = stored.Message;
        var dueAt = stored.DueAt ?? restartedAt.AddSeconds(stored.DelaySeconds);
        var publishedAt = stored.DueAt ?? DateTimeOffset.UnixEpoch;
        MqttProperties? properties = null;
        if (message.ExpiresAt is not null || message.PayloadFormatIndicator is not null || message.ContentType is not null
            || message.ResponseTopic is not null || message.CorrelationData is not null || message.UserProperties is not null)
        {
            properties = new MqttProperties
            {
                PayloadFormatIndicator = message.PayloadFormatIndicator,
                ContentType = message.ContentType,
                ResponseTopic = message.ResponseTopic,
                CorrelationData = message.CorrelationData,
                UserProperties = message.UserProperties is { Count: > 0 } user ? [.. user] : null,
                MessageExpiryInterval = message.ExpiresAt is { } at ? (uint)Math.Max(1, Math.Ceiling((at - publishedAt).TotalSeconds)) : null,
            };
        }
        var will = new WillState(clientId, message.Topic, message.Payload, (MqttQos)message.Qos, message.Retain, properties, stored.DelaySeconds, grants);
        return new PendingWill(will, dueAt);
    }
}
