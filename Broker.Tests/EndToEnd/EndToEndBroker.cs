using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>A client certificate file (leaf followed by its intermediate, as devices send it) and its key.</summary>
public sealed record DeviceFiles(string Certificate, string Key);

/// <summary>
/// One real host per test class (<see cref="IClassFixture{TFixture}"/>), on 127.0.0.1 with free ports, and the
/// argument lists real clients need to reach it over mutual TLS: mosquitto_pub/mosquitto_sub (mosquitto-clients)
/// and the paho scripts in EndToEnd/py (run with /usr/bin/python3: the Debian python with python3-paho-mqtt).
/// Tests share the broker, so each uses its own topic prefix (<see cref="NewTopicPrefix"/>) and client ids.
/// </summary>
public abstract class EndToEndBroker : IAsyncLifetime
{
    public static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(25);

    private const string Python = "/usr/bin/python3";

    private TestBroker? _broker;

    public TestBroker Broker => _broker ?? throw new InvalidOperationException("the broker is not started");

    /// <summary>The --cafile clients verify the server certificate with.</summary>
    public string CaFile { get; protected set; } = "";

    public async Task InitializeAsync() => _broker = await StartBrokerAsync();

    public virtual async Task DisposeAsync()
    {
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
    }

    protected abstract Task<TestBroker> StartBrokerAsync();

    /// <summary>The broker's warnings and errors so far, for assertion messages.</summary>
    public string BrokerWarnings() =>
        "broker warnings:\n" + string.Join("\n", Broker.Logs.Entries.Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning).TakeLast(30));

    public static string NewTopicPrefix(string test) => $"e2e/{test}/{Guid.NewGuid():N}";

    /// <summary>"3.1.1" or "5" (Theory data) → mosquitto's -V value.</summary>
    public static string MosquittoVersion(string version) => version switch
    {
        "3.1.1" => "mqttv311",
        "5" => "mqttv5",
        _ => throw new ArgumentOutOfRangeException(nameof(version), version, "3.1.1 or 5"),
    };

    /// <summary>Connection arguments for mosquitto_pub/mosquitto_sub: 127.0.0.1 (an IP SAN of the server certificate).</summary>
    public string[] MosquittoArgs(DeviceFiles device, string version, string clientId) =>
        ["-h", "127.0.0.1", "-p", Broker.MqttPort.ToString(CultureInfo.InvariantCulture), "--cafile", CaFile,
         "--cert", device.Certificate, "--key", device.Key, "-V", MosquittoVersion(version), "-i", clientId];

    /// <summary>Runs mosquitto_pub to completion (bounded); <paramref name="lines"/> are published one message per line (-l).</summary>
    public async Task<ClientResult> MosquittoPubAsync(DeviceFiles device, string version, string clientId, IEnumerable<string> args, string? lines = null)
    {
        using var process = ClientProcess.Start("mosquitto_pub", [.. MosquittoArgs(device, version, clientId), .. args], lines);
        return await process.WaitForExitAsync(ClientTimeout);
    }

    /// <summary>
    /// Starts mosquitto_sub with -d and waits (bounded) until its SUBACK arrived, so nothing published afterwards can
    /// be missed. Messages are printed as "MSG|topic|qos|retain|payload" (<see cref="Messages"/>); exits after
    /// <paramref name="count"/> messages or 15 s (-W).
    /// </summary>
    public async Task<ClientProcess> StartMosquittoSubAsync(DeviceFiles device, string version, string clientId, string filter, int qos, int count)
    {
        // stdbuf -oL: mosquitto_sub's stdout is a pipe here, fully buffered by stdio; its SUBACK line must arrive now.
        var process = ClientProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. MosquittoArgs(device, version, clientId),
            "-t", filter, "-q", qos.ToString(CultureInfo.InvariantCulture), "-C", count.ToString(CultureInfo.InvariantCulture),
            "-W", "15", "-d", "-F", "MSG|%t|%q|%r|%p"]);
        try
        {
            await process.WaitForLineAsync(line => line.Contains("received SUBACK", StringComparison.Ordinal), ClientTimeout);
            if (process.HasExited)
            {
                throw new InvalidOperationException("mosquitto_sub ended right after its SUBACK\n" + await process.WaitForExitAsync(ClientTimeout));
            }
        }
        catch
        {
            process.Dispose();
            throw;
        }
        return process;
    }

    /// <summary>The "MSG|..." lines of a mosquitto_sub started by <see cref="StartMosquittoSubAsync"/>, without the prefix.</summary>
    public static string[] Messages(ClientResult result) =>
        result.Output.Where(l => l.StartsWith("MSG|", StringComparison.Ordinal)).Select(l => l["MSG|".Length..]).ToArray();

    /// <summary>Connection part of a paho script's JSON spec.</summary>
    public Dictionary<string, object?> PahoSpec(string version) => new()
    {
        ["host"] = "127.0.0.1",
        ["port"] = Broker.MqttPort,
        ["ca"] = CaFile,
        ["version"] = version,
        ["timeout"] = 20,
    };

    public static Dictionary<string, object?> PahoClient(string clientId, DeviceFiles device) => new()
    {
        ["id"] = clientId,
        ["cert"] = device.Certificate,
        ["key"] = device.Key,
    };

    /// <summary>Starts a paho script (EndToEnd/py/<paramref name="script"/>) with its JSON spec.</summary>
    public static ClientProcess StartPaho(string script, IDictionary<string, object?> spec) =>
        ClientProcess.Start(Python, [ScriptPath(script), JsonSerializer.Serialize(spec)]);

    /// <summary>Runs a paho script to completion (bounded) and parses the JSON object of its last stdout line.</summary>
    public static async Task<(JsonObject Result, ClientResult Process)> RunPahoAsync(string script, IDictionary<string, object?> spec)
    {
        using var process = StartPaho(script, spec);
        var result = await process.WaitForExitAsync(ClientTimeout);
        return (LastJson(result), result);
    }

    public static JsonObject LastJson(ClientResult result)
    {
        var line = result.Output.LastOrDefault(l => l.StartsWith('{'))
            ?? throw new InvalidOperationException("the script printed no JSON\n" + result);
        return JsonNode.Parse(line)!.AsObject();
    }

    private static string ScriptPath(string script)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "EndToEnd", "py", script);
        return File.Exists(path) ? path : throw new FileNotFoundException("paho script not copied to the test output", path);
    }

    protected static DeviceFiles WriteDevice(string directory, string name, X509Certificate2 leaf, X509Certificate2 issuer)
    {
        var files = new DeviceFiles(Path.Combine(directory, name + ".crt"), Path.Combine(directory, name + ".key"));
        File.WriteAllText(files.Certificate, leaf.ExportCertificatePem() + "\n" + issuer.ExportCertificatePem() + "\n");
        File.WriteAllText(files.Key, leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n");
        return files;
    }
}

/// <summary>
/// The host with a <see cref="TestPki"/> (server certificate, trust anchor) and a policy that lets every test
/// certificate (OU=tests) connect with any client id and use everything under e2e/#: the messaging tests are about
/// MQTT, not about the example policies. Revocation checking is off (the test PKI has no CRL or OCSP responder).
/// Also holds an expired and an other-CA device certificate.
/// </summary>
public class TestPkiBroker : EndToEndBroker
{
    private const string Policy = """
        # End-to-end tests: test certificates (OU=tests) may use everything under e2e/.
        version: 1
        rules:
          - id: e2e-connect
            effect: allow
            actions: [connect]
            match:
              cert.ou: tests
          - id: e2e-topics
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.ou: tests
            topics:
              - e2e/#
        """;

    private readonly string _directory = TempDirectory.Create("omnibroker-e2e");
    private readonly TestPki _pki = TestPki.Create();

    /// <summary>A valid device (CN=good-device, OU=tests) from the trusted CA.</summary>
    public DeviceFiles Good { get; private set; } = null!;

    /// <summary>A device certificate whose validity ended yesterday, from the trusted CA.</summary>
    public DeviceFiles Expired { get; private set; } = null!;

    /// <summary>A device certificate from an unrelated CA, sent with that CA's intermediate.</summary>
    public DeviceFiles OtherCa { get; private set; } = null!;

    public X509Certificate2 ExpiredCertificate => _pki.Expired;

    public X509Certificate2 OtherCaCertificate => _pki.OtherCa;

    protected override async Task<TestBroker> StartBrokerAsync()
    {
        var files = _pki.WriteFiles(Path.Combine(_directory, "pki"));
        var policies = Path.Combine(_directory, "policies");
        Directory.CreateDirectory(policies);
        await File.WriteAllTextAsync(Path.Combine(policies, "e2e.yaml"), Policy);
        var devices = Path.Combine(_directory, "devices");
        Directory.CreateDirectory(devices);
        Good = WriteDevice(devices, "good", _pki.Good, _pki.Intermediate);
        Expired = WriteDevice(devices, "expired", _pki.Expired, _pki.Intermediate);
        OtherCa = WriteDevice(devices, "other-ca", _pki.OtherCa, _pki.OtherIntermediate);
        CaFile = files.Root;
        // The test PKI publishes no CRL and runs no OCSP responder: revocation is tested elsewhere (Revocation/).
        var settings = new Dictionary<string, string?>
        {
            ["Policy:Directory"] = policies,
            ["Revocation:Mode"] = "none",
        };
        foreach (var (key, value) in ExtraSettings)
        {
            settings[key] = value;
        }
        return await TestBroker.StartAsync(files, settings: settings);
    }

    /// <summary>Configuration a derived fixture adds (engine limits for flow-control tests).</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings { get; } = new Dictionary<string, string?>();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _pki.Dispose();
        TempDirectory.Delete(_directory);
    }
}

/// <summary>
/// The host with the development PKI it generates in its data directory and the example policies of policies/
/// (the copy the host project ships next to the binaries): the devices sensor-001, sensor-002, gw-berlin,
/// backend-telemetry, legacy-001.
/// </summary>
public sealed class DevelopmentPkiBroker : EndToEndBroker
{
    public static string ExamplePolicies
    {
        get
        {
            var shipped = Path.Combine(AppContext.BaseDirectory, "policies");
            return File.Exists(Path.Combine(shipped, "sensors.yaml"))
                ? shipped
                : throw new DirectoryNotFoundException($"the example policies are not next to the test binaries ({shipped})");
        }
    }

    public DeviceFiles Device(string commonName)
    {
        var devices = Path.Combine(Broker.DataDirectory, "pki", "devices");
        return new DeviceFiles(Path.Combine(devices, commonName + ".crt"), Path.Combine(devices, commonName + ".key"));
    }

    protected override async Task<TestBroker> StartBrokerAsync()
    {
        var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?> { ["Policy:Directory"] = ExamplePolicies });
        CaFile = Path.Combine(broker.DataDirectory, "pki", "ca-chain.crt");
        return broker;
    }
}
