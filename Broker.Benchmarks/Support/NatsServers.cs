using System.Diagnostics;
using System.Globalization;

namespace OmniBroker.Benchmarks.Support;

/// <summary>nats-server processes with JetStream in one cluster on 127.0.0.1, random ports, own store directories;
/// killed by PID when disposed.</summary>
internal sealed class NatsServers : IDisposable
{
    private readonly List<Process> _servers = [];
    private readonly string _root = Path.Combine(Path.GetTempPath(), "omnibroker-bench-nats-" + Guid.NewGuid().ToString("N")[..8]);

    public List<string> Urls { get; } = [];

    public static string? Executable =>
        File.Exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : File.Exists("/usr/bin/nats-server") ? "/usr/bin/nats-server" : null;

    public static NatsServers Start(int count)
    {
        var servers = new NatsServers();
        var clientPorts = Enumerable.Range(0, count).Select(_ => BrokerProcess.FreePort()).ToArray();
        var routePorts = Enumerable.Range(0, count).Select(_ => BrokerProcess.FreePort()).ToArray();
        var routes = string.Join(",", routePorts.Select(p => "nats://127.0.0.1:" + p.ToString(CultureInfo.InvariantCulture)));
        for (var i = 0; i < count; i++)
        {
            var store = Path.Combine(servers._root, "n" + i.ToString(CultureInfo.InvariantCulture));
            Directory.CreateDirectory(store);
            var start = new ProcessStartInfo(Executable ?? "nats-server") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in (string[])["-a", "127.0.0.1", "-p", clientPorts[i].ToString(CultureInfo.InvariantCulture), "-n", "bench-" + i.ToString(CultureInfo.InvariantCulture),
                         "-js", "-sd", store, "--cluster_name", "bench", "--cluster", "nats://127.0.0.1:" + routePorts[i].ToString(CultureInfo.InvariantCulture), "--routes", routes])
            {
                start.ArgumentList.Add(arg);
            }
            var process = Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            servers._servers.Add(process);
            servers.Urls.Add("nats://127.0.0.1:" + clientPorts[i].ToString(CultureInfo.InvariantCulture));
        }
        // A JetStream meta leader takes a few seconds to be elected; the nodes retry their set-up meanwhile.
        Thread.Sleep(TimeSpan.FromSeconds(3));
        return servers;
    }

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
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A store file still held open: left in /tmp.
        }
    }
}
