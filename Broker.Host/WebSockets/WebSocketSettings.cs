using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// The MQTT over secure WebSockets listener (section WebSockets). It requires client certificates exactly as the
/// MQTT over TLS listener does: same TLS options, same chain validation, revocation and policy.
/// </summary>
public sealed record WebSocketSettings(bool Enabled, IPAddress Address, int Port, string Path, string SubProtocol)
{
    public const string Section = "WebSockets";
    public const string EnabledKey = "WebSockets:Enabled";
    public const string AddressKey = "WebSockets:Address";
    public const string PortKey = "WebSockets:Port";
    public const string PathKey = "WebSockets:Path";
    public const string SubProtocolKey = "WebSockets:SubProtocol";

    public const int DefaultPort = 8884;
    public const string DefaultPath = "/mqtt";

    /// <summary>The WebSocket subprotocol of MQTT 3.1.1 §6 and 5.0 §6 [MQTT-6.0.0-3], [MQTT-6.0.0-4].</summary>
    public const string DefaultSubProtocol = "mqtt";

    /// <summary>Reads the section; problems go to <paramref name="errors"/> with the key they concern.
    /// Address defaults to Mqtt:Address. Port defaults to 8884, or to 0 (a free port) when Mqtt:Port is 0, so that
    /// test and throw-away instances started with --port 0 never collide on 8884.</summary>
    internal static WebSocketSettings Load(IConfiguration configuration, IPAddress mqttAddress, int mqttPort, int? httpPort, List<string> errors)
    {
        var enabled = true;
        var enabledText = configuration[EnabledKey];
        if (!string.IsNullOrWhiteSpace(enabledText) && !bool.TryParse(enabledText.Trim(), out enabled))
        {
            errors.Add($"{EnabledKey}: '{enabledText}' is not true or false");
            enabled = true;
        }

        var address = mqttAddress;
        var addressText = configuration[AddressKey];
        if (!string.IsNullOrWhiteSpace(addressText) && !IPAddress.TryParse(addressText.Trim(), out address!))
        {
            errors.Add($"{AddressKey}: '{addressText}' is not an IP address");
            address = mqttAddress;
        }

        var port = BrokerSettings.ReadPort(configuration, PortKey, mqttPort == 0 ? 0 : DefaultPort, errors);
        if (enabled && port != 0)
        {
            if (port == mqttPort)
            {
                errors.Add($"{PortKey}: {port.ToString(CultureInfo.InvariantCulture)} is already the MQTT over TLS port ({BrokerSettings.MqttPortKey})");
            }
            else if (port == httpPort)
            {
                errors.Add($"{PortKey}: {port.ToString(CultureInfo.InvariantCulture)} is already the HTTP port ({BrokerSettings.HttpUrlKey})");
            }
        }

        var path = configuration[PathKey];
        path = string.IsNullOrWhiteSpace(path) ? DefaultPath : path.Trim();
        if (!path.StartsWith('/') || path.Length > 1 && path.EndsWith('/') || path.Any(c => c is '?' or '#' or '%' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            errors.Add($"{PathKey}: '{path}' must be an absolute path like /mqtt (no query, fragment, escapes, spaces or trailing slash)");
            path = DefaultPath;
        }

        var subProtocol = configuration[SubProtocolKey];
        subProtocol = string.IsNullOrWhiteSpace(subProtocol) ? DefaultSubProtocol : subProtocol.Trim();
        if (!subProtocol.All(IsTokenChar))
        {
            errors.Add($"{SubProtocolKey}: '{subProtocol}' is not a valid WebSocket subprotocol token");
            subProtocol = DefaultSubProtocol;
        }

        return new WebSocketSettings(enabled, address, port, path, subProtocol);
    }

    /// <summary>RFC 9110 tchar: the subprotocol travels in the Sec-WebSocket-Protocol header as a token.</summary>
    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';
}
