using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace OmniBroker.Tests.Storage;

/// <summary>
/// The real host as a child process (<c>dotnet omnibroker.dll</c>, the build next to the tests) on 127.0.0.1 with a
/// fixed port and data directory, so that it can be killed with SIGKILL and started again on the same state. Its
/// console output (simple format: one line per event with the event id) is kept for assertions.
/// </summary>
public sealed class BrokerHostProcess : IDisposable
{
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private BrokerHostProcess(Process process) => _process = process;

    public IReadOnlyList<string> Output => _output.ToArray();

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>The broker's PID (to pause it with SIGSTOP, for example).</summary>
    public int ProcessId => _process.Id;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the host and waits (bounded) until the MQTT listener is up, or until it exits.</summary>
    public static async Task<BrokerHostProcess> StartAsync(string dataDirectory, int port, string policyDirectory, params string[] extra)
    {
        var broker = Launch(dataDirectory, port, policyDirectory, extra);
        await broker.WaitForLineAsync(l => l.Contains("[6000]", StringComparison.Ordinal), s_startTimeout);
        return broker;
    }

    /// <summary>Starts the host without waiting (for start-ups that are expected to fail).</summary>
    public static BrokerHostProcess Launch(string dataDirectory, int port, string policyDirectory, params string[] extra) =>
        LaunchUnder([], dataDirectory, port, policyDirectory, extra);

    /// <summary>Starts the host under a wrapper command, e.g. <c>["prlimit", "--nofile=600:600"]</c>, and waits as
    /// <see cref="StartAsync"/> does.</summary>
    public static async Task<BrokerHostProcess> StartUnderAsync(string[] wrapper, string dataDirectory, int port, string policyDirectory, params string[] extra)
    {
        var broker = LaunchUnder(wrapper, dataDirectory, port, policyDirectory, extra);
        await broker.WaitForLineAsync(l => l.Contains("[6000]", StringComparison.Ordinal), s_startTimeout);
        return broker;
    }

    private static BrokerHostProcess LaunchUnder(string[] wrapper, string dataDirectory, int port, string policyDirectory, string[] extra)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "omnibroker.dll");
        var start = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataDirectory,
        };
        foreach (var arg in (string[])[.. wrapper.Skip(1), .. wrapper.Length > 0 ? ["dotnet"] : Array.Empty<string>(), dll, "--data-dir", dataDirectory, "--port", port.ToString(CultureInfo.InvariantCulture),
                     "--Mqtt:Address=127.0.0.1", "--Http:Url=http://127.0.0.1:0", "--WebSockets:Enabled=false", "--policy-dir", policyDirectory, .. extra])
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DOTNET_gcServer"] = "0";
        var process = new Process { StartInfo = start };
        var broker = new BrokerHostProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                broker._output.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                broker._output.Enqueue("stderr: " + e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return broker;
    }

    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_output.FirstOrDefault(predicate) is { } line)
            {
                return line;
            }
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync();
                return _output.FirstOrDefault(predicate)
                    ?? throw new InvalidOperationException($"the broker exited ({_process.ExitCode}) without the expected line\n{Describe()}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the broker did not print the expected line within {timeout}\n{Describe()}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>SIGKILL: no shutdown code runs, nothing is flushed beyond what was committed.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    public string Describe() => "broker output:\n" + string.Join("\n", Output.TakeLast(60));

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}
