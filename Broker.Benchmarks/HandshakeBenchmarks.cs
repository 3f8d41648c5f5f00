using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// The headline number: one new device connection end to end against a broker process on loopback. Each operation
/// opens a TCP connection, runs a full mutual TLS 1.3 handshake (ECDSA P-256 certificates of the development PKI,
/// no session resumption, the client sends leaf + intermediate), sends an MQTT 3.1.1 CONNECT as sensor-001, reads
/// the CONNACK, sends DISCONNECT and closes. Operations run one after another, so Mean is the latency of a connection
/// and Op/s the connections per second of one client; Allocated is the client side.
///
/// The broker runs as a separate process. Its CPU time (utime + stime from /proc/&lt;pid&gt;/stat) is read after a
/// warm-up in [GlobalSetup] and again in [GlobalCleanup]; the difference divided by the handshakes in between is the
/// column "Server CPU ms/conn" (pilot, warm-up and measured iterations all do the same work, so all count).
/// "Client CPU ms/conn" is the same for the benchmark process. Targets: omnibroker with revocation as the
/// development PKI configures it (CRL store, warm), with revocation off, with OCSP (warm cache), and Mosquitto 2.0
/// with the same certificates, without and with a CRL, and with <c>set_tcp_nodelay true</c> (its default leaves
/// Nagle on, which adds a ~40 ms delayed-ACK wait to every connection). Mosquitto cases are skipped when it is not
/// installed.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*HandshakeBenchmarks*'
/// </summary>
[MemoryDiagnoser]
[Config(typeof(HandshakeBenchmarksConfig))]
public class HandshakeBenchmarks
{
    public const string ServerCpuColumn = "Server CPU ms/conn";
    public const string ClientCpuColumn = "Client CPU ms/conn";

    private const int WarmupHandshakes = 200;
    private static readonly TimeSpan s_handshakeTimeout = TimeSpan.FromSeconds(10);

    private BrokerFixture _broker = null!;
    private CancellationTokenSource _timeout = new();
    private long _serverTicksAtStart;
    private TimeSpan _clientCpuAtStart;
    private long _handshakes;

    public static IEnumerable<BrokerTarget> Targets => BrokerFixture.Available(
        BrokerTarget.OmniBroker, BrokerTarget.OmniBrokerNoRevocation, BrokerTarget.OmniBrokerOcsp, BrokerTarget.OmniBrokerTlsResumeAllowed,
        BrokerTarget.OmniBrokerNoSpin, BrokerTarget.Mosquitto, BrokerTarget.MosquittoCrl, BrokerTarget.MqttNetServer);

    [ParamsSource(nameof(Targets))]
    public BrokerTarget Target { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _broker = BrokerFixture.Start(Target, mosquittoLines: [BrokerFixture.MosquittoNoDelay]);
        // JIT and tiering on both sides, and the broker's caches (chain result, revocation answer, policy) filled.
        for (int i = 0; i < WarmupHandshakes; i++)
        {
            Connect().GetAwaiter().GetResult();
        }

        _serverTicksAtStart = _broker.Server.CpuTicks();
        _clientCpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        _handshakes = 0;
    }

    [Benchmark]
    public async Task Connect()
    {
        if (!_timeout.TryReset())
        {
            _timeout.Dispose();
            _timeout = new CancellationTokenSource();
        }

        _timeout.CancelAfter(s_handshakeTimeout);
        await _broker.HandshakeOnceAsync("sensor-001", "sensor-001", _timeout.Token).ConfigureAwait(false);
        _handshakes++;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try
        {
            if (_handshakes > 0 && !_broker.Server.HasExited)
            {
                double serverMs = (_broker.Server.CpuTicks() - _serverTicksAtStart) * 1000.0 / BrokerProcess.ClockTicksPerSecond;
                double clientMs = (Process.GetCurrentProcess().TotalProcessorTime - _clientCpuAtStart).TotalMilliseconds;
                ServerMeasurements.Record(typeof(HandshakeBenchmarks), nameof(Connect), ServerCpuColumn, serverMs / _handshakes, _handshakes, (nameof(Target), Target));
                ServerMeasurements.Record(typeof(HandshakeBenchmarks), nameof(Connect), ClientCpuColumn, clientMs / _handshakes, _handshakes, (nameof(Target), Target));
            }
        }
        finally
        {
            _broker.Dispose();
            _timeout.Dispose();
        }
    }
}

internal sealed class HandshakeBenchmarksConfig : ManualConfig
{
    public HandshakeBenchmarksConfig()
    {
        // Target names such as OmniBrokerTlsResumeAllowed are longer than the default 20 characters.
        SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithMaxParameterColumnWidth(40);
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.OperationsPerSecond);
        AddColumn(new ServerMeasurementColumn(HandshakeBenchmarks.ServerCpuColumn,
            "Broker process CPU time (utime+stime from /proc/<pid>/stat) per connection, over all iterations after warm-up"));
        AddColumn(new ServerMeasurementColumn(HandshakeBenchmarks.ClientCpuColumn,
            "Benchmark (client) process CPU time per connection, same window"));
    }
}

/// <summary>
/// Server CPU per handshake, measured fairly on a shared, noisy machine: every target's broker runs at once and one
/// operation does <see cref="Block"/> connections (as <see cref="HandshakeBenchmarks"/>) against each target in turn,
/// so drifting background load hits all targets alike. A broker's CPU time (utime + stime) is read before its block
/// and again 20 ms after it (so the tail of the work, e.g. closing the connections and the thread pool spinning down,
/// still counts, but not the idle time while the other targets work: an idle omnibroker uses ~0.3% of a core for
/// its timers, which would otherwise be charged to its handshakes). The sum over all blocks after the warm-up,
/// divided by the connections, is shown in one column per target. Mean is the time of one round (Block connections
/// to every target, plus the pauses) and is not the interesting number.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*HandshakeServerCpu*'
/// </summary>
[Config(typeof(HandshakeServerCpuConfig))]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 60)]
[IterationTime(2000)]
public class HandshakeServerCpuBenchmarks
{
    public const int Block = 5;
    private const int WarmupRounds = 40;
    private static readonly TimeSpan s_tail = TimeSpan.FromMilliseconds(20);

    private readonly List<(BrokerTarget Target, BrokerFixture Broker)> _brokers = [];
    private readonly Dictionary<BrokerTarget, (long Ticks, long Handshakes)> _measured = [];
    private bool _measuring;

    public static BrokerTarget[] Targets { get; } = BrokerFixture.Available(
        BrokerTarget.OmniBroker, BrokerTarget.OmniBrokerNoRevocation, BrokerTarget.OmniBrokerOcsp, BrokerTarget.OmniBrokerTlsResumeAllowed,
        BrokerTarget.OmniBrokerNoSpin, BrokerTarget.Mosquitto, BrokerTarget.MosquittoCrl, BrokerTarget.MqttNetServer).ToArray();

    public static string Column(BrokerTarget target) => target + " ms";

    [GlobalSetup]
    public void Setup()
    {
        try
        {
            foreach (BrokerTarget target in Targets)
            {
                _brokers.Add((target, BrokerFixture.Start(target, mosquittoLines: [BrokerFixture.MosquittoNoDelay])));
            }

            for (int i = 0; i < WarmupRounds; i++)
            {
                RoundRobin().GetAwaiter().GetResult();
            }
        }
        catch
        {
            Cleanup();
            throw;
        }

        _measured.Clear();
        _measuring = true;
    }

    [Benchmark]
    public async Task RoundRobin()
    {
        foreach ((BrokerTarget target, BrokerFixture broker) in _brokers)
        {
            using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(30));
            long before = broker.Server.CpuTicks();
            for (int i = 0; i < Block; i++)
            {
                await broker.HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).ConfigureAwait(false);
            }

            await Task.Delay(s_tail).ConfigureAwait(false);
            long ticks = broker.Server.CpuTicks() - before;
            if (_measuring)
            {
                (long t, long h) = _measured.GetValueOrDefault(target);
                _measured[target] = (t + ticks, h + Block);
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try
        {
            foreach ((BrokerTarget target, (long ticks, long handshakes)) in _measured)
            {
                double ms = ticks * 1000.0 / BrokerProcess.ClockTicksPerSecond;
                ServerMeasurements.Record(typeof(HandshakeServerCpuBenchmarks), nameof(RoundRobin), Column(target), ms / handshakes, handshakes);
            }
        }
        finally
        {
            foreach ((_, BrokerFixture broker) in _brokers)
            {
                broker.Dispose();
            }

            _brokers.Clear();
        }
    }
}

internal sealed class HandshakeServerCpuConfig : ManualConfig
{
    public HandshakeServerCpuConfig()
    {
        foreach (BrokerTarget target in HandshakeServerCpuBenchmarks.Targets)
        {
            AddColumn(new ServerMeasurementColumn(HandshakeServerCpuBenchmarks.Column(target),
                $"{target}: broker CPU time per connection (ms), interleaved with the other targets"));
        }
    }
}
