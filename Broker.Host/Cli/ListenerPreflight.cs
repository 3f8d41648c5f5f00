using System.Net;
using System.Net.Sockets;
using OmniBroker.Host.Configuration;
using OmniBroker.Host.WebSockets;

namespace OmniBroker.Host.Cli;

/// <summary>
/// Before the host starts: binds and releases each configured listening address once, so that a port in use (or
/// one the process may not bind) is reported as one line naming its key, instead of the host's own "Hosting failed to
/// start" error with a stack trace. Port 0 (any free port) is not checked. The host's own bind stays authoritative:
/// a port taken between this check and the start is still reported, only less tidily.
/// </summary>
internal static class ListenerPreflight
{
    public static IReadOnlyList<string> Check(BrokerSettings settings)
    {
        var problems = new List<string>();
        Probe(BrokerSettings.MqttPortKey, settings.MqttAddress, settings.MqttPort, problems);
        if (settings.WebSockets.Enabled)
        {
            Probe(WebSocketSettings.PortKey, settings.WebSockets.Address, settings.WebSockets.Port, problems);
        }
        if (settings.Http is { } http)
        {
            var address = http.Localhost ? IPAddress.Loopback : http.Address ?? IPAddress.IPv6Any;
            Probe(BrokerSettings.HttpUrlKey, address, http.Port, problems);
        }
        return problems;
    }

    private static void Probe(string key, IPAddress address, int port, List<string> problems)
    {
        if (port == 0)
        {
            return;
        }
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any))
        {
            // Kestrel's "any" listener is dual-stack.
            socket.DualMode = true;
        }
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(1);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            problems.Add($"cannot listen on {Format(address, port)} ({key}): address already in use");
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AccessDenied or SocketError.AddressNotAvailable)
        {
            problems.Add($"cannot listen on {Format(address, port)} ({key}): {ex.Message}");
        }
    }

    private static string Format(IPAddress address, int port) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";
}
