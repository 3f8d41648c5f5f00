using Microsoft.Extensions.Configuration;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Connections;

/// <summary>
/// Section Limits: how many TCP connections the device listeners (MQTT over TLS, MQTT over secure WebSockets) hold at
/// once. Past it a new connection is closed at accept, before any TLS work, so that the process never runs out of
/// file descriptors (the .NET runtime cannot start a thread without a few, and aborts).
/// </summary>
/// <param name="MaxConnections">Limits:MaxConnections; 0 (default): derived from the descriptor limit.</param>
/// <param name="ReservedDescriptors">Limits:ReservedDescriptors: descriptors kept free for everything that is not a
/// device connection (state database, logs, certificate and policy reloads, CRL/OCSP fetches, the HTTP and EST
/// listeners, assemblies loaded later, thread starts). Default 512.</param>
public sealed record ConnectionLimitSettings(int MaxConnections, int ReservedDescriptors)
{
    public const string Section = "Limits";
    public const string MaxConnectionsKey = "Limits:MaxConnections";
    public const string ReservedDescriptorsKey = "Limits:ReservedDescriptors";
    public const int DefaultReservedDescriptors = 512;

    internal static ConnectionLimitSettings Load(IConfiguration configuration, List<string> errors) => new(
        BrokerSettings.ReadInt(configuration, MaxConnectionsKey, 0, 0, int.MaxValue, errors),
        BrokerSettings.ReadInt(configuration, ReservedDescriptorsKey, DefaultReservedDescriptors, 0, 1_000_000, errors));
}
