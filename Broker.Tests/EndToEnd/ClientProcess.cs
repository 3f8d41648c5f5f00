using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>What an external client process did: exit code, stdout lines, stderr.</summary>
public sealed record ClientResult(int ExitCode, IReadOnlyList<string> Output, string Errors)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{string.Join("\n", Output)}\nstderr:\n{Errors}";
}

/// <summary>
/// An external MQTT client (mosquitto_pub/mosquitto_sub, a paho script) under a hard timeout: every wait is bounded
/// and a process that outlives it is killed with its children. Stdout is collected line by line so a test can wait
/// for a line (mosquitto_sub -d prints "received SUBACK" once its subscription is in place).
/// </summary>
public sealed class ClientProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly StringBuilder _errors = new();

    private ClientProcess(Process process)
    {
        _process = process;
    }

    public string Name => _process.StartInfo.FileName == "stdbuf" ? _process.StartInfo.ArgumentList[1] : Path.GetFileName(_process.StartInfo.FileName);

    public bool HasExited => _process.HasExited;

    /// <summary>Stops (SIGSTOP) or resumes (SIGCONT) the client: a peer that stops reading, for flow-control tests.</summary>
    public void Signal(bool stop)
    {
        using var kill = Process.Start("kill", [stop ? "-STOP" : "-CONT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5000);
    }

    public IReadOnlyList<string> Output => _output.ToArray();

    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return _errors.ToString();
            }
        }
    }

    public static ClientProcess Start(string file, IEnumerable<string> args, string? standardInput = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        var process = new Process { StartInfo = start };
        var client = new ClientProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                client._output.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (client._errors)
                {
                    client._errors.AppendLine(e.Data);
                }
            }
        };
        if (!process.Start())
        {
            throw new InvalidOperationException($"{file} did not start");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }
        return client;
    }

    /// <summary>Waits (bounded) for a stdout line; fails early when the process exits without printing it.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var line = _output.FirstOrDefault(predicate);
            if (line is not null)
            {
                return line;
            }
            if (_process.HasExited)
            {
                // Let the output handlers drain before the last look.
                await _process.WaitForExitAsync();
                line = _output.FirstOrDefault(predicate);
                return line ?? throw new InvalidOperationException($"{Name} exited ({_process.ExitCode}) without the expected line\n{Describe()}");
            }
            if (DateTime.UtcNow > deadline)
            {
                Kill();
                throw new TimeoutException($"{Name} did not print the expected line within {timeout}\n{Describe()}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits (bounded) for the exit; on timeout kills the process tree and throws.</summary>
    public async Task<ClientResult> WaitForExitAsync(TimeSpan timeout)
    {
        using (var cancel = new CancellationTokenSource(timeout))
        {
            try
            {
                await _process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
                throw new TimeoutException($"{Name} did not exit within {timeout}\n{Describe()}");
            }
        }
        // WaitForExitAsync also waits for the redirected streams to reach end of file.
        return new ClientResult(_process.ExitCode, Output, Errors);
    }

    /// <summary>Ends the process abruptly (SIGKILL): its TCP connection is closed by the kernel, without an MQTT DISCONNECT.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private string Describe() => $"stdout:\n{string.Join("\n", Output)}\nstderr:\n{Errors}";
}
