using System.Diagnostics;
using System.Globalization;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Fleet-scale connection figures (issue 13), omnibroker beside Mosquitto in one run, same development PKI
/// (ECDSA P-256 device certificate + intermediate), TLS 1.3, MQTT 3.1.1 CONNECT/CONNACK:
/// <list type="bullet">
/// <item><c>cpu</c>: server CPU (utime+stime from /proc/&lt;pid&gt;/stat) per handshake + CONNECT + DISCONNECT, a new
/// connection each time, one client; all brokers run at once and are served in interleaved blocks of
/// <see cref="Block"/> connections, so background load hits them alike; each repeat is reported, then median and
/// min–max of the ratio to Mosquitto.</item>
/// <item><c>idle</c>: a fresh broker per target opens N connections (8 at a time, keep-alive 0) and holds them idle:
/// VmRSS growth per connection, server CPU per connect while opening, idle CPU over 10 s, and for omnibroker the live
/// managed heap after forced full GCs (EventPipe, as dotnet-gcdump) and VmRSS after that GC.</item>
/// <item><c>storm</c>: a fresh broker; N devices connect at once from child processes of up to 9,000 devices each
/// (<see cref="ConnectionStorm"/>; each issues its TCP connect and handshake at a common start time): seconds from
/// that start until the last device is connected, failures by kind, peak RSS (VmHWM), server CPU.</item>
/// </list>
///   ulimit -n 1048576; dotnet Broker.Benchmarks/bin/Release/net10.0/Broker.Benchmarks.dll conn cpu idle storm \
///     [--handshakes 1000] [--repeats 3] [--connections 10000] [--storm 20000] [--attempts 5] [--omni-arg --Tls:X=Y]...
/// (storm: a refused device retries after 1, 2, 4, 8 s, with jitter, up to --attempts connects in all)
/// OMNIBROKER_BENCH_TARGETS (e.g. OmniBroker,Mosquitto,OmniBrokerTlsResumeAllowed) picks the brokers.
/// </summary>
internal static class ConnectionLoad
{
    public const string Command = "conn";
    private const int Block = 25;
    private const int Warmup = 500;
    private static readonly TimeSpan s_tail = TimeSpan.FromMilliseconds(20);

    public static async Task<int> RunAsync(string[] args)
    {
        List<string> phases = args.Where(a => a is "cpu" or "idle" or "storm" or "loop").ToList();
        if (phases.Count == 0)
        {
            phases = ["cpu", "idle"];
        }

        int handshakes = Option(args, "--handshakes", 1000);
        int repeats = Option(args, "--repeats", 3);
        int connections = Option(args, "--connections", 10_000);
        int storm = Option(args, "--storm", 20_000);
        List<string> omniArgs = [];
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--omni-arg")
            {
                omniArgs.Add(args[i + 1]);
            }
        }

        BrokerTarget[] targets = BrokerFixture.Available(BrokerTarget.OmniBroker, BrokerTarget.Mosquitto,
            BrokerTarget.OmniBrokerTlsResumeAllowed, BrokerTarget.OmniBrokerNoSpin, BrokerTarget.OmniBrokerNoOpenSslTuning, BrokerTarget.OmniBrokerKestrelTls, BrokerTarget.OmniBrokerInlineSockets, BrokerTarget.MosquittoCrl,
            BrokerTarget.SslStreamFloor, BrokerTarget.SslStreamFloorTrim, BrokerTarget.SslStreamFloorBlocking,
            BrokerTarget.MqttNetServer).ToArray();
        if (Environment.GetEnvironmentVariable("OMNIBROKER_BENCH_TARGETS") is null)
        {
            targets = targets.Where(t => t is BrokerTarget.OmniBroker or BrokerTarget.Mosquitto or BrokerTarget.OmniBrokerKestrelTls).ToArray();
        }

        Console.WriteLine($"// {DateTime.UtcNow:u}, load average {File.ReadAllText("/proc/loadavg").Trim()}, targets {string.Join(",", targets)}, omnibroker args [{string.Join(' ', omniArgs)}]");
        foreach (string phase in phases)
        {
            switch (phase)
            {
                case "cpu":
                    await HandshakeCpuAsync(targets, omniArgs, handshakes, repeats).ConfigureAwait(false);
                    break;
                case "loop":
                    await LoopAsync(targets[0], omniArgs, Option(args, "--seconds", 60)).ConfigureAwait(false);
                    break;
                case "idle":
                    Console.WriteLine("| broker | connections | open s | CPU µs/connect while opening | RSS before MiB | RSS after MiB | KiB/conn | KiB/conn after full GC | managed KiB/conn | idle CPU % of a core |");
                    Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                    foreach (BrokerTarget target in targets)
                    {
                        await IdleAsync(target, omniArgs, connections, Option(args, "--hold", 0)).ConfigureAwait(false);
                    }

                    break;
                case "storm":
                    Console.WriteLine("| broker | devices | s until all connected | connected | failures | peak RSS MiB (VmHWM) | server CPU s |");
                    Console.WriteLine("|---|---:|---:|---:|---|---:|---:|");
                    foreach (BrokerTarget target in targets)
                    {
                        await StormAsync(target, omniArgs, storm, Option(args, "--attempts", 5)).ConfigureAwait(false);
                    }

                    break;
            }
        }

        return 0;
    }

    private static async Task HandshakeCpuAsync(BrokerTarget[] targets, List<string> omniArgs, int handshakes, int repeats)
    {
        List<BrokerFixture> brokers = [];
        try
        {
            foreach (BrokerTarget target in targets)
            {
                brokers.Add(Start(target, omniArgs));
            }

            using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(30));
            foreach (BrokerFixture broker in brokers)
            {
                for (int i = 0; i < Warmup; i++)
                {
                    await broker.HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).ConfigureAwait(false);
                }
            }

            int reference = Math.Max(0, Array.IndexOf(targets, BrokerTarget.Mosquitto));
            Console.WriteLine($"| repeat | {string.Join(" | ", targets.Select(t => t + " µs/conn"))} | {string.Join(" | ", targets.Where((_, i) => i != reference).Select(t => t + "/" + targets[reference]))} |");
            Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---:|", targets.Length * 2 - 1))}");
            List<double[]> results = [];
            for (int r = 0; r < repeats; r++)
            {
                long[] ticks = new long[brokers.Count];
                for (int done = 0; done < handshakes; done += Block)
                {
                    for (int b = 0; b < brokers.Count; b++)
                    {
                        long before = brokers[b].Server.CpuTicks();
                        for (int i = 0; i < Block; i++)
                        {
                            await brokers[b].HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).ConfigureAwait(false);
                        }

                        await Task.Delay(s_tail).ConfigureAwait(false);
                        ticks[b] += brokers[b].Server.CpuTicks() - before;
                    }
                }

                int count = (handshakes + Block - 1) / Block * Block;
                double[] micros = ticks.Select(t => t * 1e6 / BrokerProcess.ClockTicksPerSecond / count).ToArray();
                results.Add(micros);
                Console.WriteLine($"| {r + 1} | {string.Join(" | ", micros.Select(m => m.ToString("N0", CultureInfo.InvariantCulture)))} | {string.Join(" | ", micros.Where((_, i) => i != reference).Select(m => (m / micros[reference]).ToString("0.00", CultureInfo.InvariantCulture) + "×"))} |");
            }

            for (int t = 0; t < targets.Length; t++)
            {
                double[] values = results.Select(m => m[t]).Order().ToArray();
                string ratio = t == reference ? "" : $", ratio to {targets[reference]} " + Summary(results.Select(m => m[t] / m[reference]).Order().ToArray(), "0.00");
                Console.WriteLine($"// {targets[t]}: median {Summary(values, "N0")} µs per handshake + CONNECT{ratio}");
            }
        }
        finally
        {
            brokers.ForEach(b => b.Dispose());
        }
    }

    /// <summary>Connects in a loop for <paramref name="seconds"/> (after the warm-up) against one broker whose PID it
    /// prints first: the load to profile, e.g. <c>perf record -g -p PID</c> with DOTNET_PerfMapEnabled=1.</summary>
    private static async Task LoopAsync(BrokerTarget target, List<string> omniArgs, int seconds)
    {
        using BrokerFixture broker = Start(target, omniArgs);
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(seconds + 600));
        for (int i = 0; i < Warmup; i++)
        {
            await broker.HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).ConfigureAwait(false);
        }

        Console.WriteLine($"// {target} pid {broker.Server.Pid}: connecting for {seconds} s");
        long before = broker.Server.CpuTicks();
        int count = 0;
        Stopwatch watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds)
        {
            await broker.HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).ConfigureAwait(false);
            count++;
        }

        double micros = (broker.Server.CpuTicks() - before) * 1e6 / BrokerProcess.ClockTicksPerSecond / count;
        Console.WriteLine($"// {count} connections, {micros:N0} µs server CPU each");
    }

    private static async Task IdleAsync(BrokerTarget target, List<string> omniArgs, int connections, int holdSeconds)
    {
        using BrokerFixture broker = Start(target, omniArgs);
        bool dotnet = !BrokerFixture.IsMosquitto(target);
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(20));
        for (int i = 0; i < Warmup; i++)
        {
            await broker.HandshakeOnceAsync("backend-telemetry", "backend-telemetry-warmup", timeout.Token).ConfigureAwait(false);
        }

        TimeSpan probe = TimeSpan.FromSeconds(60);
        long? heapBefore = dotnet ? ManagedHeapProbe.HeapAfterFullGc(broker.Server.Pid, probe) : null;
        await Task.Delay(1000).ConfigureAwait(false);
        long rssBefore = broker.Server.RssKiB();
        long cpuBefore = broker.Server.CpuTicks();
        ClientCredentials credentials = broker.Credentials("backend-telemetry");
        MqttTlsClient?[] clients = new MqttTlsClient?[connections];
        Stopwatch watch = Stopwatch.StartNew();
        try
        {
            await Parallel.ForAsync(0, connections, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = timeout.Token },
                async (i, ct) => clients[i] = await MqttTlsClient.ConnectAsync(broker.EndPoint, credentials,
                    "backend-telemetry-" + i.ToString(CultureInfo.InvariantCulture), 0, ct).ConfigureAwait(false)).ConfigureAwait(false);
            double openSeconds = watch.Elapsed.TotalSeconds;
            await Task.Delay(s_tail).ConfigureAwait(false);
            double connectMicros = (broker.Server.CpuTicks() - cpuBefore) * 1e6 / BrokerProcess.ClockTicksPerSecond / connections;
            await Task.Delay(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            long rssAfter = broker.Server.RssKiB();
            long idleBefore = broker.Server.CpuTicks();
            await Task.Delay(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            double idlePercent = (broker.Server.CpuTicks() - idleBefore) * 100.0 / BrokerProcess.ClockTicksPerSecond / 10;
            string afterGc = "n/a", managed = "n/a";
            if (dotnet)
            {
                long? heapAfter = ManagedHeapProbe.HeapAfterFullGc(broker.Server.Pid, probe);
                await Task.Delay(2000).ConfigureAwait(false);
                afterGc = F((broker.Server.RssKiB() - rssBefore) / (double)connections);
                managed = heapBefore is { } b && heapAfter is { } a ? F((a - b) / 1024.0 / connections) : "?";
            }

            Console.WriteLine($"| {target} | {connections:N0} | {F(openSeconds)} | {connectMicros:N0} | {F(rssBefore / 1024.0)} | {F(rssAfter / 1024.0)} | "
                + $"{F((rssAfter - rssBefore) / (double)connections)} | {afterGc} | {managed} | {F(idlePercent)} |");
            if (holdSeconds > 0)
            {
                // --hold: keep the connections open, e.g. for dotnet-gcdump or pmap on the broker.
                Console.WriteLine($"// {target} pid {broker.Server.Pid}: holding {connections} idle connections for {holdSeconds} s");
                await Task.Delay(TimeSpan.FromSeconds(holdSeconds)).ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (MqttTlsClient? client in clients)
            {
                if (client is not null)
                {
                    await client.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private static async Task StormAsync(BrokerTarget target, List<string> omniArgs, int devices, int attempts)
    {
        using BrokerFixture broker = Start(target, omniArgs);
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(10));
        for (int i = 0; i < Warmup; i++)
        {
            await broker.HandshakeOnceAsync("backend-telemetry", "backend-telemetry-warmup", timeout.Token).ConfigureAwait(false);
        }

        long cpuBefore = broker.Server.CpuTicks();
        await ConnectionStorm.RunAsync(broker, devices, attempts, outcome =>
        {
            string failed = outcome.Failures.Count == 0 ? "0" : string.Join("; ", outcome.Failures.Select(f => $"{f.Value} × {f.Key}"));
            if (broker.Server.HasExited)
            {
                string log = broker.Server.LogTail(5).ReplaceLineEndings(" / ");
                Console.WriteLine($"| {target} | {devices:N0} | exited ({broker.Server.ExitCode}) | {outcome.Connected:N0} | {failed} | last log lines: {log} | |");
                return;
            }

            double cpuSeconds = (broker.Server.CpuTicks() - cpuBefore) / (double)BrokerProcess.ClockTicksPerSecond;
            Console.WriteLine($"| {target} | {devices:N0} | {F(outcome.LastSuccessSeconds)} | {outcome.Connected:N0} | {failed} | {F(PeakRssKiB(broker.Server.Pid) / 1024.0)} | {F(cpuSeconds)} |");
        }).ConfigureAwait(false);
    }

    private static BrokerFixture Start(BrokerTarget target, List<string> omniArgs) =>
        BrokerFixture.Start(target, omniArgs, [BrokerFixture.MosquittoNoDelay]);

    private static long PeakRssKiB(int pid)
    {
        string line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
    }

    private static string Summary(double[] sorted, string format) =>
        $"{sorted[sorted.Length / 2].ToString(format, CultureInfo.InvariantCulture)} ({sorted[0].ToString(format, CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, CultureInfo.InvariantCulture)})";

    private static string F(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);

    private static int Option(string[] args, string name, int fallback)
    {
        int index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
