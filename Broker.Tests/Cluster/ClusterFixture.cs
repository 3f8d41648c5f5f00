using MQTTnet;
using Xunit;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Storage;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// A three-server NATS JetStream cluster and three OmniBroker hosts (real processes, TLS on 127.0.0.1) clustered on it:
/// node A on nats-0, B on nats-1, C on nats-2, every stream and bucket with three replicas. The nodes share one
/// development PKI (A's, copied to the others before they start) so that a device is trusted everywhere.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    /// <summary>The cluster test classes run one after the other (each with its own cluster: a test that kills servers
    /// leaves nothing behind for the others), never beside each other on a 2-core machine.</summary>
    public const string Collection = "Cluster";

    public const string NodeTimeoutSeconds = "3";

    private const string Policy = """
        version: 1
        rules:
          - id: cluster-connect
            effect: allow
            actions: [connect]
            match:
              cert.o: Acme
          - id: cluster-topics
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.o: Acme
            topics:
              - cluster/#
        """;

    private readonly string _root = TempDirectory.Create("omnibroker-cluster");
    private readonly List<BrokerHostProcess> _started = [];

    public NatsServerCluster Nats { get; private set; } = null!;

    public ClusterHost A { get; private set; } = null!;
    public ClusterHost B { get; private set; } = null!;
    public ClusterHost C { get; private set; } = null!;

    public string PolicyDirectory => Path.Combine(_root, "policies");

    public string CaFile => Path.Combine(_root, "A", "pki", "ca-chain.crt");

    public DeviceFiles Device(string commonName)
    {
        var devices = Path.Combine(_root, "A", "pki", "devices");
        return new DeviceFiles(Path.Combine(devices, commonName + ".crt"), Path.Combine(devices, commonName + ".key"));
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(PolicyDirectory);
        File.WriteAllText(Path.Combine(PolicyDirectory, "cluster.yaml"), Policy);
        Nats = await NatsServerCluster.StartAsync();
        A = await StartNodeAsync("A", 0);
        var others = await Task.WhenAll(StartNodeAsync("B", 1), StartNodeAsync("C", 2));
        B = others[0];
        C = others[1];
    }

    /// <summary>Starts a node (its own data directory, A's PKI) connected to nats-<paramref name="natsIndex"/>.</summary>
    public async Task<ClusterHost> StartNodeAsync(string nodeId, int natsIndex)
    {
        var data = Path.Combine(_root, nodeId);
        Directory.CreateDirectory(data);
        if (nodeId != "A")
        {
            CopyDirectory(Path.Combine(_root, "A", "pki"), Path.Combine(data, "pki"));
        }
        BrokerHostProcess process;
        int port;
        for (var attempt = 1; ; attempt++)
        {
            port = BrokerHostProcess.FreePort();
            try
            {
                process = await BrokerHostProcess.StartAsync(data, port, PolicyDirectory, "--Cluster:Nats:Urls=" + Nats.Url(natsIndex),
                    "--Cluster:NodeId=" + nodeId, "--Cluster:Replicas=3", "--Cluster:NodeTimeout=" + NodeTimeoutSeconds);
                break;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // The host exited at start (the port chosen free was taken meanwhile): another port.
            }
        }
        lock (_started)
        {
            _started.Add(process);
        }
        return new ClusterHost(nodeId, port, process);
    }

    internal Task<MqttNetClient> ConnectAsync(ClusterHost node, string clientId, string device = "sensor-001",
        Action<MqttClientOptionsBuilder>? configure = null) =>
        MqttNetClient.ConnectAsync(MqttNetClient.Options(CaFile, node.Port, Device(device), "5", clientId, configure));

    public string Describe() => string.Join("\n", _started.Select(p => p.Describe())) + "\nnats:\n" + Nats.Describe();

    public Task DisposeAsync()
    {
        foreach (var process in _started)
        {
            process.Dispose();
        }
        Nats?.Dispose();
        TempDirectory.Delete(_root);
        return Task.CompletedTask;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
        foreach (var directory in Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }
}

public sealed record ClusterHost(string NodeId, int Port, BrokerHostProcess Process);
