using System.Net;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Abstractions;

/// <summary>What the engine knows about a client at CONNECT time.</summary>
public sealed record MqttClientInfo(
    string ClientId,
    MqttProtocolVersion ProtocolVersion,
    X509Certificate2? Certificate,
    EndPoint? RemoteEndPoint,
    string? UserName);

/// <summary>
/// The authorization seam between the engine (Broker.Mqtt) and the policy (Broker.Policy).
/// <see cref="AuthorizeConnect"/> runs once per CONNECT and resolves the client's grants; the
/// returned <see cref="IClientGrants"/> is then consulted synchronously on the hot path.
/// </summary>
public interface IMqttAuthorizer
{
    ConnectDecision AuthorizeConnect(MqttClientInfo client);

    /// <summary>Raised after a new policy has been swapped in; the engine re-resolves grants of
    /// connected clients and removes subscriptions that lost their right.</summary>
    event Action? PolicyChanged;
}

/// <summary>Result of <see cref="IMqttAuthorizer.AuthorizeConnect"/>; <see cref="Grants"/> is non-null when allowed.</summary>
public sealed record ConnectDecision(bool Allowed, IClientGrants? Grants, string Reason)
{
    /// <summary>5.0 only: User Properties to send in the CONNACK of an allowed connection (e.g. certificate expiry).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? ConnAckUserProperties { get; init; }

    public static ConnectDecision Deny(string reason) => new(false, null, reason);
}

/// <summary>Per-connection rights, resolved at CONNECT against an immutable compiled policy.
/// Every method must be synchronous, thread-safe and allocation-free for repeated topics.</summary>
public interface IClientGrants
{
    bool CanPublish(string topic, MqttQos qos, bool retain);
    bool CanSubscribe(string filter);
    bool CanReceive(string topic);
}

/// <summary>Allows everything: used when no policy is configured (tests of the engine alone).</summary>
public sealed class AllowAllAuthorizer : IMqttAuthorizer, IClientGrants
{
    public static readonly AllowAllAuthorizer Instance = new();

    public event Action? PolicyChanged { add { } remove { } }

    public ConnectDecision AuthorizeConnect(MqttClientInfo client) => new(true, this, "allow-all");

    public bool CanPublish(string topic, MqttQos qos, bool retain) => true;

    public bool CanSubscribe(string filter) => true;

    public bool CanReceive(string topic) => true;
}
