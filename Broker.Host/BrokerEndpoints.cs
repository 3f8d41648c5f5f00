using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace OmniBroker.Host;

/// <summary>The listeners as bound (ports resolved when configured as 0). Valid after the app has started.</summary>
public sealed class BrokerEndpoints
{
    private ListenOptions? _mqtt;
    private readonly List<ListenOptions> _http = [];

    internal void SetMqtt(ListenOptions options) => _mqtt = options;

    internal void AddHttp(ListenOptions options) => _http.Add(options);

    private ListenOptions? _est;

    internal void SetEst(ListenOptions options) => _est = options;

    /// <summary>The EST listener; null when Est:Enabled is false.</summary>
    public IPEndPoint? EstEndPoint => _est?.IPEndPoint;

    private ListenOptions? _webSockets;

    internal void SetWebSockets(ListenOptions options) => _webSockets = options;

    /// <summary>The MQTT over secure WebSockets listener; null when WebSockets:Enabled is false.</summary>
    public IPEndPoint? WebSocketEndPoint => _webSockets?.IPEndPoint;

    /// <summary>The MQTT over TLS listener.</summary>
    public IPEndPoint MqttEndPoint => _mqtt?.IPEndPoint ?? throw new InvalidOperationException("the MQTT listener is not configured yet");

    /// <summary>The HTTP listener's endpoints (empty when Http:Url is empty).</summary>
    public IReadOnlyList<IPEndPoint> HttpEndPoints => _http.Select(l => l.IPEndPoint!).Where(e => e is not null).ToArray();

    /// <summary>A URL to reach the HTTP listener from this machine, e.g. http://127.0.0.1:9090.</summary>
    public Uri? HttpBaseUrl { get; internal set; }

    internal Uri? ResolveHttpBaseUrl(bool https)
    {
        var endpoint = HttpEndPoints.FirstOrDefault();
        if (endpoint is null)
        {
            return null;
        }
        var host = endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any) ? "127.0.0.1"
            : endpoint.Address.Equals(IPAddress.IPv6Loopback) ? "[::1]"
            : endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]"
            : endpoint.Address.ToString();
        return new Uri($"{(https ? "https" : "http")}://{host}:{endpoint.Port}/");
    }
}
