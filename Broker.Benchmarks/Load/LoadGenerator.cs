using System.Diagnostics;
using System.Globalization;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks.Load;

/// <summary>
/// Publish load generator: runs scenarios against omnibroker and Mosquitto in one run (interleaved, same development
/// PKI certificates, mutual TLS 1.3, 64-byte payloads, handshakes before the measured window), numbers every message
/// per publisher (loss, late/duplicate) and reads the broker's CPU from /proc/&lt;pid&gt;/stat.
///   dotnet run -c Release --project Broker.Benchmarks -- load [a] [b] [e] [--messages N]
/// Scenarios: (a) QoS 0 1→1 unpaced, 100 messages per write; (b) QoS 1 1→1, publisher window 100, the subscriber
/// acknowledges each; (c) fan-out QoS 0 1→100 (N/40 messages); (e) paced 10,000 msg/s QoS 0 1→1, one message per
/// write, 10 s; (f) QoS 0 1→10 where one subscriber never reads: the other nine must get everything. (d) fan-in
/// 100→1 needs 100 device identities the development PKI does not have: not implemented.
/// </summary>
internal static class LoadGenerator
{
    private const string Topic = "devices/sensor-001/telemetry";
    private const int PayloadSize = 64;

    public static async Task<int> RunAsync(string[] args)
    {
        var scenarios = args.Where(a => a.Length == 1).ToList();
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
        using var broker = BrokerFixture.Start(target);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var qos = scenario == "b" ? (byte)1 : (byte)0;
        var paced = scenario == "e";
        // (c): 1 → 100 subscribers; (f): 10 subscribers, the last of which never reads.
        var subscriberCount = scenario switch { "c" => 100, "f" => 10, _ => 1 };
        var readers = scenario == "f" ? 9 : subscriberCount;
        var count = paced ? 100_000 : scenario == "b" ? messages / 2 : scenario == "c" ? messages / 40 : messages;

        var subscribers = new List<LoadClient>();
        try
        {
            for (var i = 0; i < subscriberCount; i++)
            {
                var subscriber = await LoadClient.ConnectAsync(broker, "backend-telemetry", i == 0 ? "backend-telemetry" : $"backend-telemetry-{i}", 1, 0,
                    cts.Token).ConfigureAwait(false);
                subscribers.Add(subscriber);
                await subscriber.SubscribeAsync("devices/+/telemetry", qos, cts.Token).ConfigureAwait(false);
            }
            await using var publisher = await LoadClient.ConnectAsync(broker, "sensor-001", "sensor-001", 0, qos > 0 ? 100 : 0, cts.Token).ConfigureAwait(false);
            foreach (var subscriber in subscribers.Take(readers))
            {
                subscriber.StartReading(cts.Token);
            }
            publisher.StartReading(cts.Token);

            var cpuBefore = broker.Server.CpuTicks();
            var clock = Stopwatch.StartNew();
            if (paced)
            {
                await PublishPacedAsync(publisher, count, 10_000, cts.Token).ConfigureAwait(false);
            }
            else
            {
                await PublishAsync(publisher, count, qos, cts.Token).ConfigureAwait(false);
            }

            // Until every reader has everything, or nothing arrived for 5 s.
            var expected = count * readers;
            long Received() => subscribers.Take(readers).Sum(s => Interlocked.Read(ref s.Received));
            long last = -1;
            var quietSince = Stopwatch.StartNew();
            while (Received() < expected && quietSince.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(10, cts.Token).ConfigureAwait(false);
                var now = Received();
                if (now != last)
                {
                    last = now;
                    quietSince.Restart();
                }
            }
            var received = Received();
            var elapsed = clock.Elapsed.TotalSeconds - (received < expected ? 5 : 0);
            var cpuSeconds = (broker.Server.CpuTicks() - cpuBefore) / (double)BrokerProcess.ClockTicksPerSecond;
            var lost = subscribers.Take(readers).Sum(s => s.Lost + s.MissingAtEnd(count));
            var late = subscribers.Take(readers).Sum(s => s.Reordered);
            var name = scenario switch
            {
                "a" => "(a) QoS 0 1→1 unpaced",
                "b" => "(b) QoS 1 1→1 window 100",
                "c" => "(c) QoS 0 fan-out 1→100",
                "e" => "(e) paced 10k/s QoS 0, 1 msg/write",
                "f" => "(f) QoS 0 1→10, one stalled (9 readers counted)",
                _ => scenario,
            };
            return string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {target} | {expected} | {received} | {lost} | {late} | {received / elapsed:F0} | {cpuSeconds * 1e6 / Math.Max(1, received):F1} |");
        }
        finally
        {
            foreach (var subscriber in subscribers)
            {
                await subscriber.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task PublishAsync(LoadClient publisher, long count, byte qos, CancellationToken cancellationToken)
    {
        const int perWrite = 100;
        var batch = new List<byte>(perWrite * 96);
        for (long sequence = 0; sequence < count; sequence++)
        {
            if (qos > 0)
            {
                await publisher.AcquireAsync(cancellationToken).ConfigureAwait(false);
            }
            batch.AddRange(LoadClient.EncodePublish(Topic, 0, sequence, PayloadSize, qos, (ushort)(sequence % 65_535 + 1)));
            if ((sequence + 1) % perWrite == 0 || sequence == count - 1 || qos > 0 && (sequence + 1) % 10 == 0)
            {
                await publisher.WriteAsync(batch.ToArray(), cancellationToken).ConfigureAwait(false);
                batch.Clear();
            }
        }
    }

    private static async Task PublishPacedAsync(LoadClient publisher, long count, int perSecond, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        for (long sequence = 0; sequence < count; sequence++)
        {
            var due = TimeSpan.FromSeconds(sequence / (double)perSecond);
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
            await publisher.WriteAsync(LoadClient.EncodePublish(Topic, 0, sequence, PayloadSize, 0, 0), cancellationToken).ConfigureAwait(false);
        }
    }
}
