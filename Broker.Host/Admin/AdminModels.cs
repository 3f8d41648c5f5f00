using System.Security.Cryptography;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Host.Admin;

/// <summary>One connected client as GET /api/clients returns it. Certificate fields are null for a client
/// without a certificate (only possible when the engine is run without RequireClientIdentity). Node: the cluster node holding the connection (null on a single node).</summary>
internal sealed record AdminClient(
    string Id,
    string? RemoteAddress,
    string ProtocolVersion,
    DateTimeOffset ConnectedAt,
    string? Subject,
    string? Issuer,
    string? SerialNumber,
    string? Sha256Fingerprint,
    DateTimeOffset? NotAfter,
    string? Node = null)
{
    /// <summary>A client connected on another node of the cluster: only its id and node are known here.</summary>
    public static AdminClient Remote(string id, string node) => new(id, null, "", default, null, null, null, null, null, node);

    public static AdminClient From(ConnectedClientInfo c)
    {
        var cert = c.Certificate;
        return new AdminClient(
            c.ClientId,
            c.RemoteEndPoint?.ToString(),
            ProtocolLabel(c.ProtocolVersion),
            c.ConnectedAt,
            cert?.Subject,
            cert?.Issuer,
            cert?.SerialNumber,
            cert?.GetCertHashString(HashAlgorithmName.SHA256),
            cert is null ? null : new DateTimeOffset(cert.NotAfter).ToUniversalTime());
    }

    public static string ProtocolLabel(MqttProtocolVersion v) => v switch
    {
        MqttProtocolVersion.V311 => "3.1.1",
        MqttProtocolVersion.V500 => "5.0",
        _ => ((byte)v).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>GET /api/certificates/expiring answer.</summary>
internal sealed record ExpiringCertificates(int Days, DateTimeOffset Before, IReadOnlyList<AdminClient> Clients);

/// <summary>/readyz answer.</summary>
internal sealed record ReadinessReport(string Status, IReadOnlyDictionary<string, bool> Checks);
