using System.Globalization;
using Microsoft.Data.Sqlite;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Storage;

/// <summary>
/// One data directory (development PKI, state.db) and one policy directory for a durable-state test, and the broker
/// process running on them, which a test kills (SIGKILL) and starts again. Devices of the development PKI:
/// backend-telemetry, gw-berlin, sensor-001, sensor-002 (all O=Acme). The policy lets every Acme certificate connect
/// and use durable/#; a second file grants extra/# (removed by the policy-change test).
/// </summary>
public sealed class DurableBrokerEnvironment : IAsyncDisposable
{
    public const string ExtraPolicyFile = "extra.yaml";

    private const string Policy = """
        version: 1
        rules:
          - id: durable-connect
            effect: allow
            actions: [connect]
            match:
              cert.o: Acme
          - id: durable-topics
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.o: Acme
            topics:
              - durable/#
        """;

    private const string ExtraPolicy = """
        version: 1
        rules:
          - id: durable-extra
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.o: Acme
            topics:
              - extra/#
        """;

    private readonly string[] _extraArgs;

    private DurableBrokerEnvironment(string root, string[] extraArgs)
    {
        Root = root;
        _extraArgs = extraArgs;
        DataDirectory = Path.Combine(root, "data");
        PolicyDirectory = Path.Combine(root, "policies");
        Directory.CreateDirectory(DataDirectory);
        Directory.CreateDirectory(PolicyDirectory);
        File.WriteAllText(Path.Combine(PolicyDirectory, "durable.yaml"), Policy);
        File.WriteAllText(Path.Combine(PolicyDirectory, ExtraPolicyFile), ExtraPolicy);
        Port = BrokerHostProcess.FreePort();
    }

    public string Root { get; }
    public string DataDirectory { get; }
    public string PolicyDirectory { get; }
    public int Port { get; }
    public BrokerHostProcess? Broker { get; private set; }
    public string StatePath => Path.Combine(DataDirectory, "state.db");
    public string CaFile => Path.Combine(DataDirectory, "pki", "ca-chain.crt");

    /// <summary>Output of every broker process started so far (killed ones included), for assertions and messages.</summary>
    public List<string> History { get; } = [];

    public static async Task<DurableBrokerEnvironment> StartAsync(params string[] extraArgs)
    {
        var environment = new DurableBrokerEnvironment(TempDirectory.Create("omnibroker-durable"), extraArgs);
        await environment.RestartAsync();
        return environment;
    }

    public DeviceFiles Device(string commonName)
    {
        var devices = Path.Combine(DataDirectory, "pki", "devices");
        return new DeviceFiles(Path.Combine(devices, commonName + ".crt"), Path.Combine(devices, commonName + ".key"));
    }

    /// <summary>Kills the running broker with SIGKILL (no shutdown code runs).</summary>
    public async Task KillAsync()
    {
        if (Broker is { } broker)
        {
            await broker.KillAsync();
            History.AddRange(broker.Output);
            broker.Dispose();
            Broker = null;
        }
    }

    public async Task RestartAsync()
    {
        await KillAsync();
        Broker = await BrokerHostProcess.StartAsync(DataDirectory, Port, PolicyDirectory, _extraArgs);
    }

    public string Describe() => "history:\n" + string.Join("\n", History.TakeLast(40)) + "\n" + (Broker?.Describe() ?? "");

    public Dictionary<string, object?> PahoSpec(string version = "5") => new()
    {
        ["host"] = "127.0.0.1",
        ["port"] = Port,
        ["ca"] = CaFile,
        ["version"] = version,
        ["timeout"] = 20,
    };

    public Dictionary<string, object?> Client(string commonName, bool clean = false, uint? expiry = 3600)
    {
        var device = Device(commonName);
        return new()
        {
            ["id"] = commonName,
            ["cert"] = device.Certificate,
            ["key"] = device.Key,
            ["clean"] = clean,
            ["expiry"] = expiry,
        };
    }

    /// <summary>mosquitto_sub/mosquitto_pub connection arguments (MQTT 5.0).</summary>
    public string[] MosquittoArgs(string commonName)
    {
        var device = Device(commonName);
        return ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "--cafile", CaFile, "--cert", device.Certificate,
            "--key", device.Key, "-V", "mqttv5", "-i", commonName];
    }

    /// <summary>A persistent session (mosquitto_sub -c, Session Expiry Interval 3600) subscribed to
    /// <paramref name="filter"/>, then disconnected (-E).</summary>
    public async Task SubscribeOfflineAsync(string commonName, string filter, int qos)
    {
        using var process = ClientProcess.Start("mosquitto_sub", [.. MosquittoArgs(commonName), "-c", "-x", "3600", "-q",
            qos.ToString(CultureInfo.InvariantCulture), "-t", filter, "-E"]);
        var result = await process.WaitForExitAsync(EndToEndBroker.ClientTimeout);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"mosquitto_sub -E failed\n{result}\n{Describe()}");
        }
    }

    /// <summary>Reads the state database as it is on disk (a second, read-only connection; WAL readers do not block).</summary>
    public List<string> Query(string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = StatePath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture))));
        }
        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        TempDirectory.Delete(Root);
    }
}
