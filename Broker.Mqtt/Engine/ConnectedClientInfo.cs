using System.Net;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>A snapshot of one connected client, for the admin API.</summary>
public sealed record ConnectedClientInfo(
    string ClientId,
    EndPoint? RemoteEndPoint,
    MqttProtocolVersion ProtocolVersion,
    X509Certificate2? Certificate,
    DateTimeOffset ConnectedAt);
