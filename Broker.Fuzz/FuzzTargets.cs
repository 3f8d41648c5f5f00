using OmniBroker.Fuzz.Targets;

namespace OmniBroker.Fuzz;

/// <summary>
/// The fuzz targets, one per parser that takes bytes from outside the broker. Each runs one input and swallows only
/// the exception its parser documents for bad input; anything else escapes and is a finding (AFL++ records a crash).
/// </summary>
public static class FuzzTargets
{
    private static readonly Dictionary<string, Action<byte[]>> s_targets = new(StringComparer.Ordinal)
    {
        // MQTT packet reader: a connection's byte stream; 3.1.1 or 5.0 after a CONNECT, else the target's version.
        ["mqtt311"] = data => MqttTarget.Run(data, Mqtt.Packets.MqttProtocolVersion.V311),
        ["mqtt5"] = data => MqttTarget.Run(data, Mqtt.Packets.MqttProtocolVersion.V500),
        ["proxyv2"] = ProxyProtocolTarget.Run,
        ["websocket"] = WebSocketTarget.Run,
        ["policy"] = PolicyTarget.Run,
        ["ocsp"] = OcspTarget.Run,
        ["crl"] = CrlTarget.Run,
    };

    /// <summary>Target names, in the order scripts/fuzz.sh and docs/fuzzing.md list them.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. s_targets.Keys];

    public static bool Exists(string name) => s_targets.ContainsKey(name);

    /// <summary>Runs one input through <paramref name="target"/>. Throws only on a finding.</summary>
    public static void Run(string target, byte[] data) => s_targets[target](data);
}
