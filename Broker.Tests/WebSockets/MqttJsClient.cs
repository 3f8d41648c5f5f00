using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;

namespace OmniBroker.Tests.WebSockets;

/// <summary>
/// The npm mqtt package (MQTT.js) in Node, over secure WebSockets with a client certificate: Broker.Tests/js/wss-client.mjs
/// driven through stdin commands, its stdout events read as JSON lines. Every wait is bounded.
/// </summary>
public sealed class MqttJsClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    private static readonly SemaphoreSlim s_installLock = new(1, 1);
    private static bool s_installed;

    private readonly Process _process;
    private readonly Channel<JsonElement> _events = Channel.CreateUnbounded<JsonElement>();
    private readonly List<string> _seen = [];
    private readonly Task _stdout;
    private readonly Task<string> _stderr;

    private MqttJsClient(Process process)
    {
        _process = process;
        _stdout = Task.Run(ReadEventsAsync);
        _stderr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>Broker.Tests/js in the source tree (the build output may be elsewhere: OMNI_BUILD_ROOT).</summary>
    public static string ScriptDirectory { get; } = FindScriptDirectory();

    public static async Task<MqttJsClient> StartAsync(Uri url, string caPath, string certificatePath, string keyPath, string clientId,
        int protocolVersion = 5)
    {
        await EnsureInstalledAsync();
        var options = JsonSerializer.Serialize(new
        {
            url = url.ToString(),
            ca = caPath,
            cert = certificatePath,
            key = keyPath,
            clientId,
            protocolVersion,
        });
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = ScriptDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(ScriptDirectory, "wss-client.mjs"));
        start.ArgumentList.Add(options);
        var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        return new MqttJsClient(process);
    }

    /// <summary>Runs <c>npm install</c> in Broker.Tests/js once when MQTT.js is missing (scripts/test.sh normally did).</summary>
    public static async Task EnsureInstalledAsync()
    {
        await s_installLock.WaitAsync();
        try
        {
            if (s_installed || File.Exists(Path.Combine(ScriptDirectory, "node_modules", "mqtt", "package.json")))
            {
                s_installed = true;
                return;
            }
            var start = new ProcessStartInfo("npm") { WorkingDirectory = ScriptDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "install", "--no-audit", "--no-fund" })
            {
                start.ArgumentList.Add(arg);
            }
            using var npm = Process.Start(start) ?? throw new InvalidOperationException("npm did not start (Node.js and npm are needed for the WebSocket tests)");
            var output = npm.StandardOutput.ReadToEndAsync();
            var error = npm.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await npm.WaitForExitAsync(timeout.Token);
            if (npm.ExitCode != 0)
            {
                throw new InvalidOperationException($"npm install in {ScriptDirectory} failed ({npm.ExitCode}): {await output}{await error}");
            }
            s_installed = true;
        }
        finally
        {
            s_installLock.Release();
        }
    }

    /// <summary>Names of every event printed so far, in order (including those <see cref="WaitForAsync"/> skipped).</summary>
    public IReadOnlyList<string> SeenEvents
    {
        get
        {
            lock (_seen)
            {
                return _seen.Where(l => l.StartsWith('{'))
                    .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("event").GetString() ?? "")
                    .ToList();
            }
        }
    }

    public async Task SendAsync(object command)
    {
        await _process.StandardInput.WriteLineAsync(JsonSerializer.Serialize(command));
        await _process.StandardInput.FlushAsync();
    }

    public Task SubscribeAsync(string topic, int qos = 1) => SendAsync(new { op = "subscribe", topic, qos });

    public Task PublishAsync(string topic, string payload, int qos = 1) => SendAsync(new { op = "publish", topic, payload, qos });

    public Task EndAsync() => SendAsync(new { op = "end" });

    /// <summary>Waits for the next event named <paramref name="name"/> (earlier events of other names are skipped but kept
    /// for the failure message). Fails fast on an "error" event unless that is what is waited for.</summary>
    public async Task<JsonElement> WaitForAsync(string name, TimeSpan? timeout = null, bool failOnError = true)
    {
        using var cancel = new CancellationTokenSource(timeout ?? Timeout);
        try
        {
            while (true)
            {
                var next = await _events.Reader.ReadAsync(cancel.Token);
                var eventName = next.GetProperty("event").GetString();
                if (eventName == name)
                {
                    return next;
                }
                if (eventName == "error" && failOnError)
                {
                    throw new InvalidOperationException($"MQTT.js reported an error while waiting for '{name}': {next}; {await DescribeAsync()}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"MQTT.js sent no '{name}' within {(timeout ?? Timeout).TotalSeconds}s; {await DescribeAsync()}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"MQTT.js exited before '{name}'; {await DescribeAsync()}");
        }
    }

    /// <summary>Every event until the process exits (bounded).</summary>
    public async Task<IReadOnlyList<JsonElement>> WaitForExitAsync(TimeSpan? timeout = null)
    {
        var events = new List<JsonElement>();
        using var cancel = new CancellationTokenSource(timeout ?? Timeout);
        try
        {
            await foreach (var item in _events.Reader.ReadAllAsync(cancel.Token))
            {
                events.Add(item);
            }
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"MQTT.js did not exit within {(timeout ?? Timeout).TotalSeconds}s; {await DescribeAsync()}");
        }
        return events;
    }

    private async Task ReadEventsAsync()
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_seen)
                {
                    _seen.Add(line);
                }
                if (line.StartsWith('{'))
                {
                    _events.Writer.TryWrite(JsonDocument.Parse(line).RootElement.Clone());
                }
            }
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    private async Task<string> DescribeAsync()
    {
        string seen;
        lock (_seen)
        {
            seen = string.Join(" | ", _seen);
        }
        var stderr = _process.HasExited ? await _stderr.WaitAsync(TimeSpan.FromSeconds(2)) : "(running)";
        return $"stdout: {seen}; stderr: {stderr}";
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(3));
            }
            catch (Exception ex) when (ex is TimeoutException or IOException or InvalidOperationException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
        await _stdout.WaitAsync(TimeSpan.FromSeconds(5));
        _process.Dispose();
    }

    private static string FindScriptDirectory([CallerFilePath] string sourceFile = "")
    {
        var fromSource = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(sourceFile) ?? ".", "..", "js"));
        if (File.Exists(Path.Combine(fromSource, "package.json")))
        {
            return fromSource;
        }
        // Deterministic builds map source paths: look upwards from the working and output directories instead.
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                var candidate = Path.Combine(directory.FullName, "Broker.Tests", "js");
                if (File.Exists(Path.Combine(candidate, "package.json")))
                {
                    return candidate;
                }
            }
        }
        throw new DirectoryNotFoundException($"Broker.Tests/js (MQTT.js scripts) not found from {fromSource} or the working directory");
    }
}
