using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Security;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Cluster figures (issue 15): three nats-servers (JetStream cluster, loopback) and three omnibroker nodes with
/// replicas 3, beside one omnibroker without a cluster, in one run. MQTT 3.1.1 over mutual TLS, 64-byte payloads,
/// sensor-001 publishing to backend-telemetry's subscription: deliveries per second and lost messages for QoS 0 and
/// QoS 1 (publisher window 32) on one node without a cluster, publisher and subscriber on one cluster node, and across
/// nodes (publisher on C, subscriber on A); then the delivery latency at a paced 500 msg/s (QoS 1, timestamp in the
/// payload, p50/p99); then the time a persistent session takes to move between nodes (CONNACK on the new node).
///   dotnet Broker.Benchmarks.dll cluster [qos0 messages] [qos1 messages]
/// </summary>
internal static class ClusterLoad
{
    public const string Command = "cluster";
    private const string Topic = "devices/sensor-001/telemetry";

    public static async Task<int> RunAsync(string[] args)
    {
        var qos0Messages = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
        var qos1Messages = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5_000;
        if (NatsServers.Executable is null)
        {
            Console.Error.WriteLine("nats-server not found: apt-get install nats-server");
            return 2;
        }
        using var nats = NatsServers.Start(3);
        string[] Node(string id, int server) =>
            ["--Revocation:Mode=none", "--Cluster:Nats:Urls=" + nats.Urls[server], "--Cluster:NodeId=" + id, "--Cluster:Replicas=3"];
        using var single = BrokerFixture.Start(BrokerTarget.OmniBrokerNoRevocation);
        using var a = BrokerFixture.Start(BrokerTarget.OmniBrokerNoRevocation, Node("A", 0));
        using var b = BrokerFixture.Start(BrokerTarget.OmniBrokerNoRevocation, Node("B", 1), pkiFrom: a.PkiDirectory);
        using var c = BrokerFixture.Start(BrokerTarget.OmniBrokerNoRevocation, Node("C", 2), pkiFrom: a.PkiDirectory);
        Console.WriteLine($"3 nats-servers, 3 nodes (replicas 3) and one node without a cluster; load average {Load()}");

        (string Name, BrokerFixture Publisher, BrokerFixture Subscriber)[] cases =
            [("one node, no cluster", single, single), ("cluster, one node (A to A)", a, a), ("cluster, across nodes (C to A)", c, a)];
        Console.WriteLine("| case | QoS 0 msg/s | QoS 0 lost | QoS 1 msg/s | QoS 1 lost (of PUBACKed) | latency p50 / p99 at 500 msg/s, QoS 1 |");
        Console.WriteLine("|---|---:|---:|---:|---:|---|");
        foreach (var (name, publisher, subscriber) in cases)
        {
            // Warm-up (JIT, routes): not measured.
            await FlowAsync(publisher, subscriber, 1, 2_000, 32, pace: null);
            var qos0 = await FlowAsync(publisher, subscriber, 0, qos0Messages, 0, pace: null);
            var qos1 = await FlowAsync(publisher, subscriber, 1, qos1Messages, 32, pace: null);
            var paced = await FlowAsync(publisher, subscriber, 1, 1_000, 32, pace: TimeSpan.FromMilliseconds(2));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {qos0.Rate:F0} | {qos0.Lost} of {qos0Messages} | {qos1.Rate:F0} | {qos1.Lost} of {qos1.Acked} | {paced.P50:F2} / {paced.P99:F2} ms |"));
        }

        Console.WriteLine("| session move | CONNACK on the new node | session present |");
        Console.WriteLine("|---|---:|---|");
        foreach (var (from, to, label) in new[] { (a, b, "A to B"), (b, c, "B to C"), (c, a, "C to A") })
        {
            var (ms, present) = await MoveAsync(from, to);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {label} | {ms:F0} ms | {present} |"));
        }
        Console.WriteLine($"load average {Load()}");
        return 0;
    }

    private static string Load() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    private sealed record Result(double Rate, int Acked, int Lost, double P50, double P99);

    private static async Task<Result> FlowAsync(BrokerFixture publisherNode, BrokerFixture subscriberNode, byte qos, int messages, int window, TimeSpan? pace)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using var subscriber = await RawMqtt.ConnectAsync(subscriberNode, "backend-telemetry", "backend-telemetry", cleanSession: true, timeout.Token);
        await RawMqtt.WriteSubscribeAsync(subscriber, Topic, timeout.Token, qos);
        await RawMqtt.ReadPacketAsync(subscriber, new byte[64], timeout.Token); // SUBACK
        await using var publisher = await RawMqtt.ConnectAsync(publisherNode, "sensor-001", "sensor-001", cleanSession: true, timeout.Token);
        // The subscription reaches the other nodes' routes through the interest bucket (milliseconds).
        await Task.Delay(1000, timeout.Token);

        var seen = new bool[messages];
        var delivered = 0;
        var latencies = new List<double>(messages);
        long first = 0, last = 0;
        var reader = Task.Run(() => ReadDeliveriesAsync(subscriber, seen, latencies, () => delivered++, t => last = t, timeout.Token));

        var permits = window > 0 ? new SemaphoreSlim(window, window) : null;
        var ackReader = qos == 0 ? Task.FromResult(0) : Task.Run(() => RawMqtt.ReadPubAcksAsync(publisher, messages, permits!, timeout.Token));

        var payload = new byte[64];
        first = Stopwatch.GetTimestamp();
        for (var i = 0; i < messages; i++)
        {
            if (permits is not null)
            {
                await permits.WaitAsync(timeout.Token);
            }
            BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
            BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(8), i);
            await publisher.WriteAsync(qos == 0 ? RawMqtt.EncodePublishQos0(Topic, payload) : RawMqtt.EncodePublishQos1(Topic, payload, (ushort)(i % 65535 + 1)),
                timeout.Token);
            if (pace is { } interval)
            {
                await Task.Delay(interval, timeout.Token);
            }
        }
        var acked = await ackReader;
        var settle = Stopwatch.StartNew();
        while (Volatile.Read(ref delivered) < messages && settle.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
        }
        await timeout.CancelAsync();
        await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var distinct = seen.Count(s => s);
        var lost = qos == 0 ? messages - distinct : acked - Math.Min(acked, distinct);
        var sorted = latencies.Order().ToArray();
        double Percentile(double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
        var seconds = (double)(Math.Max(last, first + 1) - first) / Stopwatch.Frequency;
        return new Result(distinct / seconds, qos == 0 ? messages : acked, lost, Percentile(0.5), Percentile(0.99));
    }

    private static async Task ReadDeliveriesAsync(SslStream subscriber, bool[] seen, List<double> latencies, Action counted, Action<long> lastAt,
        CancellationToken token)
    {
        var buffer = new byte[256 * 1024];
        var acks = new List<byte>();
        var filled = 0;
        while (!token.IsCancellationRequested)
        {
            var read = await subscriber.ReadAsync(buffer.AsMemory(filled), token);
            if (read == 0)
            {
                return;
            }
            filled += read;
            var offset = 0;
            var now = Stopwatch.GetTimestamp();
            while (RawMqtt.TryPacket(buffer.AsSpan(offset, filled - offset), out var type, out var body, out var length))
            {
                if (type >> 4 == 3)
                {
                    var packet = buffer.AsSpan(offset + body, length - body);
                    var topicLength = BinaryPrimitives.ReadUInt16BigEndian(packet);
                    var withId = ((type >> 1) & 3) > 0;
                    var payload = packet[(2 + topicLength + (withId ? 2 : 0))..];
                    if (withId)
                    {
                        var packetId = BinaryPrimitives.ReadUInt16BigEndian(packet[(2 + topicLength)..]);
                        acks.AddRange([0x40, 0x02, (byte)(packetId >> 8), (byte)packetId]);
                    }
                    var index = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
                    if (index >= 0 && index < seen.Length && !seen[index])
                    {
                        seen[index] = true;
                        latencies.Add((now - BinaryPrimitives.ReadInt64LittleEndian(payload)) * 1000.0 / Stopwatch.Frequency);
                        counted();
                        lastAt(now);
                    }
                }
                offset += length;
            }
            Buffer.BlockCopy(buffer, offset, buffer, 0, filled - offset);
            filled -= offset;
            if (acks.Count > 0)
            {
                await subscriber.WriteAsync(acks.ToArray(), token);
                acks.Clear();
            }
        }
    }

    /// <summary>A persistent session (Clean Session 0) subscribed on <paramref name="from"/>, then the device connects to
    /// <paramref name="to"/>: milliseconds until its CONNACK, and whether the session came along.</summary>
    private static async Task<(double Milliseconds, bool SessionPresent)> MoveAsync(BrokerFixture from, BrokerFixture to)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await using var before = await RawMqtt.ConnectAsync(from, "backend-telemetry", "backend-telemetry", cleanSession: false, timeout.Token);
        await RawMqtt.WriteSubscribeAsync(before, Topic, timeout.Token);
        await RawMqtt.ReadPacketAsync(before, new byte[64], timeout.Token);
        await Task.Delay(1000, timeout.Token);
        var clock = Stopwatch.StartNew();
        var (after, present) = await RawMqtt.ConnectWithAckAsync(to, "backend-telemetry", "backend-telemetry", cleanSession: false, timeout.Token);
        var ms = clock.Elapsed.TotalMilliseconds;
        await after.DisposeAsync();
        return (ms, present);
    }
}
