using System.Text;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host;

/// <summary>What `serve` prints once listening: endpoints and, with the development PKI, ready-to-paste client commands.</summary>
internal static class StartupBanner
{
    public static string Create(BrokerSettings settings, BrokerEndpoints endpoints, DevelopmentPkiState pkiState)
    {
        var text = new StringBuilder();
        var mqtt = endpoints.MqttEndPoint;
        text.AppendLine();
        text.AppendLine($"OmniBroker listening: MQTT over TLS on {mqtt} (client certificate required)");
        if (endpoints.HttpBaseUrl is { } http)
        {
            text.AppendLine($"                      HTTP on {http} (/healthz, /metrics, /api)");
        }
        if (endpoints.WebSocketEndPoint is { } wss)
        {
            text.AppendLine($"                      MQTT over WebSockets on wss://{wss}{settings.WebSockets.Path} (client certificate required)");
        }
        text.AppendLine($"Data directory: {settings.DataDirectory}");
        if (settings.PolicyDirectory is not null)
        {
            text.AppendLine($"Policy directory: {settings.PolicyDirectory}");
        }

        if (pkiState.Pki is { } pki)
        {
            text.AppendLine();
            text.AppendLine($"Development PKI {(pkiState.CreatedNow ? "created" : "in use")}: {Display(pki.Directory)}  (unencrypted keys, development only)");
            text.AppendLine($"  CA bundle for clients: {Display(pki.CaChainPath)}    devices: {Display(Path.Combine(pki.Directory, "devices"))}");
            var port = mqtt.Port;
            var cafile = Quote(Display(pki.CaChainPath));
            text.AppendLine("Try it (mosquitto-clients):");
            text.AppendLine($"  mosquitto_sub -h localhost -p {port} --cafile {cafile} --cert {Quote(Display(pki.GetDeviceCertificatePath("backend-telemetry")))} --key {Quote(Display(pki.GetDeviceKeyPath("backend-telemetry")))} -i backend-telemetry -t 'devices/+/telemetry' -V mqttv5 -v");
            text.AppendLine($"  mosquitto_pub -h localhost -p {port} --cafile {cafile} --cert {Quote(Display(pki.GetDeviceCertificatePath("sensor-001")))} --key {Quote(Display(pki.GetDeviceKeyPath("sensor-001")))} -i sensor-001 -t devices/sensor-001/telemetry -m '{{\"temperature\":21.5}}' -V mqttv5");
            text.AppendLine("  omnibroker pki issue --cn sensor-003 --o Acme --ou sensors --device-type temperature-sensor --l hamburg");
        }
        text.AppendLine();
        return text.ToString();
    }

    /// <summary>Relative to the working directory when below it: shorter lines that still paste correctly.</summary>
    private static string Display(string path)
    {
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative;
    }

    private static string Quote(string path) => path.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '$' or '&' or ';') ? "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : path;
}
