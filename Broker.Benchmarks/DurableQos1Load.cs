using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using OmniBroker.Benchmarks.Support;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Benchmarks;

/// <summary>
/// QoS 1, one publisher to one persistent subscriber, over mutual TLS (MQTT 3.1.1, development PKI, 64-byte payloads):
/// omnibroker with the SQLite store (strict: PUBACK after the commit; relaxed; memory) beside Mosquitto with
/// <c>persistence true</c>, each as its own process, in one run. The subscriber connects with Clean Session 0 (so its
/// queue is persistent in both brokers) and acknowledges every message; the publisher keeps <c>window</c> PUBLISH
/// unacknowledged. Rate = messages / (first PUBLISH .. last delivery); lost = PUBACKed but never delivered.
///   dotnet run -c Release --project Broker.Benchmarks -- durable-qos1 [messages] [window] [rounds] [warm-up messages]
/// With warm-up messages, each broker first carries that many messages through the same two clients (not measured): a
/// broker that has run for a while has its hot paths compiled by the tiered JIT, a freshly started .NET process has not,
/// and a 20,000-message run lasts about a second. <c>OMNIBROKER_BENCH_DURABLE_CASES=0,1</c> runs only those cases.
/// </summary>
internal static class DurableQos1Load
{
    private const string Topic = "devices/sensor-001/telemetry";

    public static async Task RunAsync(string[] args)
    {
        var messages = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
        var window = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32;
        // The machine is shared and noisy: every case runs once per round, rounds interleaved, and each omnibroker rate
        // is compared with Mosquitto's rate of the same round; the median of those ratios is the figure to quote.
        var rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var warmUp = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 0;
        Console.WriteLine($"QoS 1 1->1, {messages} messages of 64 bytes, publisher window {window}, persistent subscriber, {rounds} interleaved rounds, {warmUp} warm-up messages per broker");
        (string Name, BrokerTarget Target, string[] Omni, string[] Mosquitto)[] cases =
        [
            ("Mosquitto 2, persistence true", BrokerTarget.Mosquitto, [], ["persistence true", "max_inflight_messages 32", "max_queued_messages 1000000"]),
            ("omnibroker, Storage:Durability=strict (default; Synchronous=normal)", BrokerTarget.OmniBrokerNoRevocation, [], []),
            ("omnibroker, strict, Storage:Synchronous=full (fsync per group commit)", BrokerTarget.OmniBrokerNoRevocation, ["--Storage:Synchronous=full"], []),
            ("omnibroker, Storage:Durability=relaxed", BrokerTarget.OmniBrokerNoRevocation, ["--Storage:Durability=relaxed"], []),
            ("omnibroker, Storage:Mode=memory", BrokerTarget.OmniBrokerNoRevocation, ["--Storage:Mode=memory"], []),
        ];
        if (Environment.GetEnvironmentVariable("OMNIBROKER_BENCH_DURABLE_CASES") is { Length: > 0 } selected)
        {
            cases = [.. selected.Split(',').Select(i => cases[int.Parse(i, CultureInfo.InvariantCulture)])];
        }
        if (!BrokerProcess.MosquittoInstalled || cases[0].Target != BrokerTarget.Mosquitto)
        {
            Console.WriteLine("Mosquitto is not installed or not selected: no side-by-side figure (apt-get install mosquitto)");
            cases = [.. cases.Where(c => c.Target != BrokerTarget.Mosquitto)];
        }
        var rates = new double[cases.Length, rounds];
        var lost = new int[cases.Length];
        var acked = new int[cases.Length];
        for (var round = 0; round < rounds; round++)
        {
            for (var c = 0; c < cases.Length; c++)
            {
                var (name, target, omni, mosquitto) = cases[c];
                var mosquittoData = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "omnibroker-bench-mosquitto-" + Guid.NewGuid().ToString("N")[..8])).FullName;
                using var broker = BrokerFixture.Start(target, omni, [.. mosquitto, "persistence_location " + mosquittoData + "/"]);
                if (warmUp > 0)
                {
                    var warm = await MeasureAsync(broker, warmUp, window);
                    lost[c] += warm.Acked - Math.Min(warm.Acked, warm.Delivered);
                }
                var result = await MeasureAsync(broker, messages, window);
                rates[c, round] = result.Rate;
                acked[c] += result.Acked;
                lost[c] += result.Acked - Math.Min(result.Acked, result.Delivered);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round + 1}: {name}: {result.Rate:F0} msg/s, {result.Acked} PUBACKed, {result.Delivered} delivered (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})"));
            }
        }

        var mosquittoCase = cases.Length > 0 && cases[0].Target == BrokerTarget.Mosquitto ? 0 : -1;
        Console.WriteLine("| broker | msg/s per round | median msg/s | median ratio to Mosquitto (same round) | PUBACKed | lost |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        for (var c = 0; c < cases.Length; c++)
        {
            var perRound = Enumerable.Range(0, rounds).Select(r => rates[c, r]).ToArray();
            var ratio = mosquittoCase < 0 ? "-" : string.Create(CultureInfo.InvariantCulture,
                $"{Median(Enumerable.Range(0, rounds).Select(r => rates[c, r] / rates[mosquittoCase, r]).ToArray()):F2}x");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {cases[c].Name} | {string.Join(" / ", perRound.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))} | {Median(perRound):F0} | {ratio} | {acked[c]} | {lost[c]} |"));
        }
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static async Task<(double Rate, int Acked, int Delivered)> MeasureAsync(BrokerFixture broker, int messages, int window)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using var subscriber = await RawMqtt.ConnectAsync(broker, "backend-telemetry", "backend-telemetry", cleanSession: false, timeout.Token);
        await RawMqtt.WriteSubscribeAsync(subscriber, "devices/+/telemetry", timeout.Token);
        await RawMqtt.ReadPacketAsync(subscriber, new byte[64 * 1024], timeout.Token); // SUBACK
        await using var publisher = await RawMqtt.ConnectAsync(broker, "sensor-001", "sensor-001", cleanSession: true, timeout.Token);

        var delivered = new HashSet<ushort>();
        var deliveredCount = 0;
        var allDelivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = Stopwatch.StartNew();
        long lastDelivery = 0;
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            var acks = new List<byte>();
            var filled = 0;
            while (!timeout.IsCancellationRequested && deliveredCount < messages)
            {
                var read = await subscriber.ReadAsync(buffer.AsMemory(filled), timeout.Token);
                if (read == 0)
                {
                    break;
                }
                filled += read;
                var offset = 0;
                while (RawMqtt.TryPacket(buffer.AsSpan(offset, filled - offset), out var type, out var body, out var length))
                {
                    if (type >> 4 == 3)
                    {
                        var packet = buffer.AsSpan(offset + body);
                        var topicLength = BinaryPrimitives.ReadUInt16BigEndian(packet);
                        var packetId = BinaryPrimitives.ReadUInt16BigEndian(packet[(2 + topicLength)..]);
                        acks.AddRange([0x40, 0x02, (byte)(packetId >> 8), (byte)packetId]);
                        deliveredCount++;
                    }
                    offset += length;
                }
                Buffer.BlockCopy(buffer, offset, buffer, 0, filled - offset);
                filled -= offset;
                if (acks.Count > 0)
                {
                    await subscriber.WriteAsync(acks.ToArray(), timeout.Token);
                    acks.Clear();
                }
                lastDelivery = clock.ElapsedTicks;
            }
            allDelivered.TrySetResult();
        });

        var permits = new SemaphoreSlim(window, window);
        var ackReader = Task.Run(() => RawMqtt.ReadPubAcksAsync(publisher, messages, permits, timeout.Token));

        var payload = new byte[64];
        clock.Restart();
        for (var i = 0; i < messages; i++)
        {
            await permits.WaitAsync(timeout.Token);
            await publisher.WriteAsync(RawMqtt.EncodePublishQos1(Topic, payload, (ushort)(i % 65535 + 1)), timeout.Token);
        }
        var acked = await ackReader;
        await Task.WhenAny(allDelivered.Task, Task.Delay(TimeSpan.FromSeconds(30)));
        var seconds = (double)lastDelivery / Stopwatch.Frequency;
        return (messages / seconds, acked, deliveredCount);
    }
}
