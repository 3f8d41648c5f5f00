using System.Diagnostics;
using System.Globalization;
using OmniBroker.Benchmarks.Support;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Benchmarks.Load;

/// <summary>
/// Publish load generator: runs scenarios against omnibroker and Mosquitto in one run (interleaved, same development
/// PKI certificates, mutual TLS 1.3, 64-byte payloads, handshakes before the measured window), numbers every message
/// per publisher (loss, late/duplicate) and reads the broker's CPU from /proc/&lt;pid&gt;/stat.
///   dotnet run -c Release --project Broker.Benchmarks -- load [a] [b] [e] [--messages N]
/// Scenarios: (a) QoS 0 1→1 unpaced, 100 messages per write; (b) QoS 1 1→1, publisher window 100, the subscriber
/// acknowledges each; (c) fan-out QoS 0 1→100 (N/40 messages); (e) paced 10,000 msg/s QoS 0 1→1, one message per
/// write, 10 s after a 3 s warm-up (the others warm up with a tenth of their messages); (f) QoS 0 1→10 where one subscriber never reads: the other nine must get everything; (d) fan-in
/// QoS 0 and (d1) fan-in QoS 1 (window 100 each): 100 publishers, each with its own device certificate (sensor-101 …
/// sensor-200, issued for the run) and its own topic, → 1 subscriber on <c>devices/+/telemetry</c>, N/100 messages each.
/// </summary>
internal static class LoadGenerator
{
    private const string Topic = "devices/sensor-001/telemetry";
    private const int PayloadSize = 64;
    private const int FanInPublishers = 100;

    private static readonly DeviceCertificateRequest[] s_fanInDevices = Enumerable.Range(0, FanInPublishers)
        .Select(i => new DeviceCertificateRequest(FanInDevice(i), "Acme", "sensors", "temperature-sensor") { Locality = "berlin" })
        .ToArray();

    private static string FanInDevice(int index) => string.Create(CultureInfo.InvariantCulture, $"sensor-{101 + index:D3}");

    public static async Task<int> RunAsync(string[] args)
    {
        var scenarios = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || args[i - 1] != "--messages")).ToList();
        if (scenarios.Count == 0)
        {
            scenarios = ["a", "b", "e"];
        }
        var index = Array.IndexOf(args, "--messages");
        var messages = index >= 0 ? long.Parse(args[index + 1], CultureInfo.InvariantCulture) : 200_000;
        var targets = BrokerFixture.Available(BrokerTarget.OmniBroker, BrokerTarget.Mosquitto).ToArray();

        Console.WriteLine("| scenario | broker | sent | received | lost | late/dup | deliveries/s | server CPU µs/delivery |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var scenario in scenarios)
        {
            foreach (var target in targets)
            {
                var row = await RunScenarioAsync(scenario, target, messages).ConfigureAwait(false);
                Console.WriteLine(row);
            }
        }
        return 0;
    }

    private static async Task<string> RunScenarioAsync(string scenario, BrokerTarget target, long messages)
    {
        var fanIn = scenario is "d" or "d1";
        // OMNIBROKER_BENCH_MOSQUITTO: extra mosquitto.conf lines separated by ';' (e.g. "max_queued_messages 0").
        var mosquittoLines = (Environment.GetEnvironmentVariable("OMNIBROKER_BENCH_MOSQUITTO") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        using var broker = BrokerFixture.Start(target, mosquittoLines: mosquittoLines, devices: fanIn ? s_fanInDevices : null);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var qos = scenario is "b" or "d1" ? (byte)1 : (byte)0;
        var publisherCount = fanIn ? FanInPublishers : 1;
        var paced = scenario == "e";
        // (c): 1 → 100 subscribers; (f): 10 subscribers, the last of which never reads.
        var subscriberCount = scenario switch { "c" => 100, "f" => 10, _ => 1 };
        var readers = scenario == "f" ? 9 : subscriberCount;
        // Messages per publisher.
        var count = paced ? 100_000 : scenario == "b" ? messages / 2 : scenario == "c" ? messages / 40 : fanIn ? messages / FanInPublishers : messages;

        var subscribers = new List<LoadClient>();
        var publishers = new List<LoadClient>();
        try
        {
            for (var i = 0; i < subscriberCount; i++)
            {
                var subscriber = await LoadClient.ConnectAsync(broker, "backend-telemetry", i == 0 ? "backend-telemetry" : $"backend-telemetry-{i}",
                    publisherCount, 0, cts.Token).ConfigureAwait(false);
                subscribers.Add(subscriber);
                await subscriber.SubscribeAsync("devices/+/telemetry", qos, cts.Token).ConfigureAwait(false);
            }
            for (var p = 0; p < publisherCount; p++)
            {
                var device = fanIn ? FanInDevice(p) : "sensor-001";
                publishers.Add(await LoadClient.ConnectAsync(broker, device, device, 0, qos > 0 ? 100 : 0, cts.Token).ConfigureAwait(false));
            }
            foreach (var subscriber in subscribers.Take(readers))
            {
                subscriber.StartReading(cts.Token);
            }
            foreach (var publisher in publishers)
            {
                publisher.StartReading(cts.Token);
            }

            // Warm-up, outside the measured window (and for both brokers alike): omnibroker's JIT compiles its hot paths
            // in the first seconds (over half the process's CPU in a 10 s paced window measured right after start), which
            // is not the cost of a message at everyday load. Warm-up messages are numbered like the rest: their losses count.
            var warm = paced ? 30_000 : Math.Max(1, count / 10);
            long Received() => subscribers.Take(readers).Sum(s => Interlocked.Read(ref s.Received));
            await PublishRangeAsync(0, warm).ConfigureAwait(false);
            var warmReceived = await WaitForAsync(warm * publisherCount * readers).ConfigureAwait(false);

            var cpuBefore = broker.Server.CpuTicks();
            var clock = Stopwatch.StartNew();
            await PublishRangeAsync(warm, count).ConfigureAwait(false);
            var expected = count * publisherCount * readers;
            var received = await WaitForAsync(warmReceived + expected).ConfigureAwait(false) - warmReceived;
            var elapsed = clock.Elapsed.TotalSeconds - (received < expected ? 5 : 0);
            var cpuSeconds = (broker.Server.CpuTicks() - cpuBefore) / (double)BrokerProcess.ClockTicksPerSecond;
            var lost = subscribers.Take(readers).Sum(s => s.Lost + s.MissingAtEnd(warm + count));

            Task PublishRangeAsync(long first, long n) => paced
                ? PublishPacedAsync(publishers[0], first, n, 10_000, cts.Token)
                : Task.WhenAll(publishers.Select((publisher, p) =>
                    PublishAsync(publisher, fanIn ? $"devices/{FanInDevice(p)}/telemetry" : Topic, p, first, n, qos, cts.Token)));

            // Until the readers have `total` messages, or nothing arrived for 5 s.
            async Task<long> WaitForAsync(long total)
            {
                long last = -1;
                var quietSince = Stopwatch.StartNew();
                while (Received() < total && quietSince.Elapsed < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(10, cts.Token).ConfigureAwait(false);
                    var now = Received();
                    if (now != last)
                    {
                        last = now;
                        quietSince.Restart();
                    }
                }
                return Received();
            }
            var late = subscribers.Take(readers).Sum(s => s.Reordered);
            var name = scenario switch
            {
                "a" => "(a) QoS 0 1→1 unpaced",
                "b" => "(b) QoS 1 1→1 window 100",
                "c" => "(c) QoS 0 fan-out 1→100",
                "d" => "(d) QoS 0 fan-in 100→1",
                "d1" => "(d) QoS 1 fan-in 100→1 window 100",
                "e" => "(e) paced 10k/s QoS 0, 1 msg/write",
                "f" => "(f) QoS 0 1→10, one stalled (9 readers counted)",
                _ => scenario,
            };
            return string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {target} | {expected} | {received} | {lost} | {late} | {received / elapsed:F0} | {cpuSeconds * 1e6 / Math.Max(1, received):F1} |");
        }
        finally
        {
            foreach (var client in subscribers.Concat(publishers))
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task PublishAsync(LoadClient publisher, string topic, int index, long first, long count, byte qos, CancellationToken cancellationToken)
    {
        const int perWrite = 100;
        var batch = new List<byte>(perWrite * 96);
        for (long sequence = first; sequence < first + count; sequence++)
        {
            if (qos > 0)
            {
                await publisher.AcquireAsync(cancellationToken).ConfigureAwait(false);
            }
            batch.AddRange(LoadClient.EncodePublish(topic, index, sequence, PayloadSize, qos, (ushort)(sequence % 65_535 + 1)));
            if ((sequence + 1) % perWrite == 0 || sequence == first + count - 1 || qos > 0 && (sequence + 1) % 10 == 0)
            {
                await publisher.WriteAsync(batch.ToArray(), cancellationToken).ConfigureAwait(false);
                batch.Clear();
            }
        }
    }

    private static async Task PublishPacedAsync(LoadClient publisher, long first, long count, int perSecond, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        for (long sequence = first; sequence < first + count; sequence++)
        {
            var due = TimeSpan.FromSeconds((sequence - first) / (double)perSecond);
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
            await publisher.WriteAsync(LoadClient.EncodePublish(Topic, 0, sequence, PayloadSize, 0, 0), cancellationToken).ConfigureAwait(false);
        }
    }
}
