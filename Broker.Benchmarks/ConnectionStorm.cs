using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// The devices of a reconnect storm, spread over child processes (each holds one descriptor per device, and a
/// process may hold at most 20,000 here): every child waits for a common start time, then connects all its devices
/// at once (TCP, TLS 1.3 with the backend-telemetry certificate, CONNECT), prints one RESULT line and keeps its
/// connections open until its standard input closes.
/// </summary>
internal static class ConnectionStorm
{
    public const string ChildCommand = "conn-storm-clients";
    public const int DevicesPerProcess = 9_000;

    public sealed record Outcome(int Connected, double LastSuccessSeconds, Dictionary<string, int> Failures);

    /// <summary>Runs <paramref name="devices"/> devices against <paramref name="broker"/> from child processes; once
    /// every child has reported, <paramref name="report"/> runs while all connections are still open.</summary>
    public static async Task RunAsync(BrokerFixture broker, int devices, int attempts, Action<Outcome> report)
    {
        string devicesDirectory = Path.Combine(broker.PkiDirectory, "devices");
        long start = DateTimeOffset.UtcNow.AddSeconds(5).ToUnixTimeMilliseconds();
        List<Process> children = [];
        try
        {
            for (int first = 0; first < devices; first += DevicesPerProcess)
            {
                ProcessStartInfo info = new(BrokerFixture.DotnetHost())
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    UseShellExecute = false,
                };
                foreach (string argument in new[]
                {
                    typeof(ConnectionStorm).Assembly.Location, ChildCommand, broker.EndPoint.Port.ToString(CultureInfo.InvariantCulture),
                    Path.Combine(devicesDirectory, "backend-telemetry.crt"), Path.Combine(devicesDirectory, "backend-telemetry.key"),
                    Path.Combine(broker.PkiDirectory, "server.crt"), first.ToString(CultureInfo.InvariantCulture),
                    Math.Min(DevicesPerProcess, devices - first).ToString(CultureInfo.InvariantCulture), start.ToString(CultureInfo.InvariantCulture),
                    attempts.ToString(CultureInfo.InvariantCulture),
                })
                {
                    info.ArgumentList.Add(argument);
                }

                children.Add(Process.Start(info) ?? throw new InvalidOperationException("cannot start a storm client process"));
            }

            int connected = 0;
            double last = 0;
            Dictionary<string, int> failures = new(StringComparer.Ordinal);
            foreach (Process child in children)
            {
                string? line;
                while ((line = await child.StandardOutput.ReadLineAsync().ConfigureAwait(false)) is not null && !line.StartsWith("RESULT ", StringComparison.Ordinal))
                {
                }

                string[] parts = (line ?? throw new InvalidOperationException("a storm client process ended without a result")).Split(' ', 4);
                connected += int.Parse(parts[1], CultureInfo.InvariantCulture);
                last = Math.Max(last, double.Parse(parts[2], CultureInfo.InvariantCulture));
                foreach (string failure in parts.Length > 3 ? parts[3].Split(" ; ", StringSplitOptions.RemoveEmptyEntries) : [])
                {
                    string[] kv = failure.Split(" × ", 2);
                    failures[kv[1]] = failures.GetValueOrDefault(kv[1]) + int.Parse(kv[0], CultureInfo.InvariantCulture);
                }
            }

            report(new Outcome(connected, last, failures));
        }
        finally
        {
            foreach (Process child in children)
            {
                child.StandardInput.Close();
                if (!child.WaitForExit(TimeSpan.FromSeconds(60)))
                {
                    child.Kill();
                }

                child.Dispose();
            }
        }
    }

    /// <summary>The child: <c>port cert key serverCert first count startUnixMs attempts</c>.</summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        IPEndPoint endPoint = new(IPAddress.Loopback, int.Parse(args[0], CultureInfo.InvariantCulture));
        X509Certificate2Collection server = [];
        server.ImportFromPemFile(args[3]);
        using ClientCredentials credentials = new(args[1], args[2], server[0]);
        int first = int.Parse(args[4], CultureInfo.InvariantCulture);
        int count = int.Parse(args[5], CultureInfo.InvariantCulture);
        DateTimeOffset start = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(args[6], CultureInfo.InvariantCulture));
        int attempts = int.Parse(args[7], CultureInfo.InvariantCulture);
        TimeSpan wait = start - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait).ConfigureAwait(false);
        }

        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(10));
        ConcurrentDictionary<string, int> failures = new(StringComparer.Ordinal);
        MqttTlsClient?[] clients = new MqttTlsClient?[count];
        long lastTicks = 0;
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            // A device refused (closed or reset before its CONNACK: a full listener) tries again after 1, 2, 4, ... s
            // with jitter, as devices do; only its last failure counts as one.
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    clients[i] = await MqttTlsClient.ConnectAsync(endPoint, credentials,
                        "backend-telemetry-" + (first + i).ToString(CultureInfo.InvariantCulture), 0, timeout.Token).ConfigureAwait(false);
                    long now = DateTimeOffset.UtcNow.Ticks;
                    long seen;
                    while ((seen = Interlocked.Read(ref lastTicks)) < now && Interlocked.CompareExchange(ref lastTicks, now, seen) != seen)
                    {
                    }

                    break;
                }
                catch (Exception ex) when (attempt < attempts && ex is IOException or SocketException or AuthenticationException)
                {
                    failures.AddOrUpdate("retried after " + ex.GetType().Name, 1, (_, n) => n + 1);
                    await Task.Delay(TimeSpan.FromSeconds((1 << Math.Min(attempt - 1, 4)) * (0.5 + Random.Shared.NextDouble())), timeout.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or SocketException or AuthenticationException or InvalidOperationException or OperationCanceledException)
                {
                    failures.AddOrUpdate(ex.GetType().Name + ": " + ex.Message.Split('.')[0], 1, (_, n) => n + 1);
                    break;
                }
            }
        }))).ConfigureAwait(false);

        double lastSeconds = lastTicks == 0 ? 0 : (new DateTimeOffset(lastTicks, TimeSpan.Zero) - start).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT {clients.Count(c => c is not null)} {lastSeconds:0.0} {string.Join(" ; ", failures.Select(f => $"{f.Value} × {f.Key}"))}"));
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        foreach (MqttTlsClient? client in clients)
        {
            if (client is not null)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }

        return 0;
    }
}
