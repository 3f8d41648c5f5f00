using System.Net;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Host.Admin;

/// <summary>Admin API log events; ids 5100-5199 are stable.</summary>
internal static partial class AdminLog
{
    [LoggerMessage(EventId = 5100, EventName = "AdminClientDisconnected", Level = LogLevel.Information,
        Message = "Admin API disconnected client {ClientId} (requested from {RemoteAddress})")]
    public static partial void ClientDisconnected(ILogger logger, string clientId, IPAddress? remoteAddress);

    [LoggerMessage(EventId = 5101, EventName = "AdminClientNotFound", Level = LogLevel.Information,
        Message = "Admin API disconnect of {ClientId}: no such connected client")]
    public static partial void ClientNotFound(ILogger logger, string clientId);

    [LoggerMessage(EventId = 5102, EventName = "AdminRequestRefused", Level = LogLevel.Warning,
        Message = "Admin API request {Method} {Path} from {RemoteAddress} refused: {Reason}")]
    public static partial void RequestRefused(ILogger logger, string method, string path, IPAddress? remoteAddress, string reason);

    [LoggerMessage(EventId = 5103, EventName = "AdminApiExposed", Level = LogLevel.Information,
        Message = "HTTP listener {Urls} is not loopback-only: the admin API requires HTTPS and a client certificate with an admin grant")]
    public static partial void NotLoopback(ILogger logger, string urls);

    [LoggerMessage(EventId = 5104, EventName = "AdminNoAuthorizer", Level = LogLevel.Warning,
        Message = "HTTP listener is not loopback-only and no admin authorizer is configured: every admin API request will be refused")]
    public static partial void NoAuthorizer(ILogger logger);

    [LoggerMessage(EventId = 5105, EventName = "AdminClusterDisconnect", Level = LogLevel.Information,
        Message = "Admin API cluster-wide disconnect of {ClientId}: {Result} (requested from {RemoteAddress})")]
    public static partial void ClusterDisconnect(ILogger logger, string clientId, string result, IPAddress? remoteAddress);
}
