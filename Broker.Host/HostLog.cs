using System.Net;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Host;

/// <summary>Log events of Broker.Host (stable ids 6000-6049).</summary>
internal static partial class HostLog
{
    [LoggerMessage(EventId = 6000, EventName = "MqttListening", Level = LogLevel.Information,
        Message = "MQTT over TLS (client certificate required) listening on {EndPoint}")]
    public static partial void MqttListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 6001, EventName = "HttpListening", Level = LogLevel.Information,
        Message = "HTTP listening on {EndPoint} (health, metrics, admin API)")]
    public static partial void HttpListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 6002, EventName = "DevelopmentPkiUrlMismatch", Level = LogLevel.Warning,
        Message = "The development PKI's certificates point their CRL/OCSP URLs at {BakedUrl}, but the HTTP listener is {HttpUrl}: revocation lookups by clients will fail (delete {Directory} to recreate it)")]
    public static partial void DevelopmentPkiUrlMismatch(ILogger logger, Uri bakedUrl, string httpUrl, string directory);

    [LoggerMessage(EventId = 6003, EventName = "PolicyDirectory", Level = LogLevel.Information,
        Message = "Policy directory: {Directory}")]
    public static partial void PolicyDirectory(ILogger logger, string directory);
}
