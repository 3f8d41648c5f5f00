using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using OmniBroker.Tests.Storage;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// Three real nats-server processes (Debian's /usr/sbin/nats-server) in one JetStream cluster on 127.0.0.1 with random
/// ports and their own store directories; stopped by PID.
/// </summary>
public sealed class NatsServerCluster : IDisposable
{
    private readonly List<Process> _servers = [];
    private readonly List<ProcessStartInfo> _starts = [];
    private readonly ConcurrentQueue<string> _output = new();
    private readonly string _root;

    private NatsServerCluster(string root) => _root = root;

    public List<int> ClientPorts { get; } = [];

    public static string Executable =>
        File.Exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

    public string Url(int index) => "nats://127.0.0.1:" + ClientPorts[index].ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts the cluster; again on other ports (up to three times) when a port chosen free was taken meanwhile
    /// by another process of a busy machine.</summary>
    public static async Task<NatsServerCluster> StartAsync(int count = 3)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryStartAsync(count);
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // A server exited at start (address in use): new ports.
            }
        }
    }

    private static async Task<NatsServerCluster> TryStartAsync(int count)
    {
        var cluster = new NatsServerCluster(TempDirectory.Create("omnibroker-nats"));
        var routePorts = new List<int>();
        for (var i = 0; i < count; i++)
        {
            cluster.ClientPorts.Add(BrokerHostProcess.FreePort());
            routePorts.Add(BrokerHostProcess.FreePort());
        }
        var routes = string.Join(",", routePorts.Select(p => "nats://127.0.0.1:" + p.ToString(CultureInfo.InvariantCulture)));
        for (var i = 0; i < count; i++)
        {
            var store = Path.Combine(cluster._root, "n" + i);
            Directory.CreateDirectory(store);
            var start = new ProcessStartInfo(Executable)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            // One server runs standalone (a cluster of one never establishes its routes).
            string[] clustering = count == 1 ? [] : ["--cluster_name", "omni", "--cluster", "nats://127.0.0.1:" + routePorts[i].ToString(CultureInfo.InvariantCulture),
                "--routes", routes];
            foreach (var arg in (string[])["-a", "127.0.0.1", "-p", cluster.ClientPorts[i].ToString(CultureInfo.InvariantCulture), "-n", "nats-" + i,
                         "-js", "-sd", store, .. clustering])
            {
                start.ArgumentList.Add(arg);
            }
            cluster._starts.Add(start);
            cluster._servers.Add(cluster.Launch(i));
        }
        // Ready to accept clients, and a JetStream meta leader elected (streams and buckets can be created).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (cluster._output.Count(l => l.Contains("Server is ready", StringComparison.Ordinal)) < count
               || (count > 1 && !cluster._output.Any(l => l.Contains("metadata leader", StringComparison.OrdinalIgnoreCase))))
        {
            if (DateTime.UtcNow > deadline || cluster._servers.Any(p => p.HasExited))
            {
                var output = cluster.Describe();
                cluster.Dispose();
                throw new InvalidOperationException("the nats-server cluster did not start\n" + output);
            }
            await Task.Delay(100);
        }
        return cluster;
    }

    private Process Launch(int index)
    {
        var process = new Process { StartInfo = _starts[index] };
        var name = "nats-" + index + ": ";
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _output.Enqueue(name + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _output.Enqueue(name + e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Kills server <paramref name="index"/> (SIGKILL, by PID).</summary>
    public void Kill(int index)
    {
        var process = _servers[index];
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(10_000);
        }
    }

    /// <summary>Starts server <paramref name="index"/> again on its ports and store directory.</summary>
    public void Restart(int index)
    {
        _servers[index].Dispose();
        _servers[index] = Launch(index);
    }

    public string Describe() => string.Join("\n", _output.TakeLast(30));

    public void Dispose()
    {
        foreach (var process in _servers)
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(10_000);
            }
            process.Dispose();
        }
        TempDirectory.Delete(_root);
    }
}
