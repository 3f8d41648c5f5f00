using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// QoS 0 fan-through over mutual TLS, omnibroker against Mosquitto on the same machine: one subscriber connection
/// (backend-telemetry, <c>devices/+/telemetry</c>) and one publisher connection (sensor-001, publishing
/// <c>devices/sensor-001/telemetry</c>), both MQTT 3.1.1 with the development PKI's certificates, against a broker
/// process on loopback. Each operation publishes 20,000 messages of 64 bytes (pre-encoded, written 100 per TLS write)
/// and ends when the subscriber has read all 20,000; Mean is per message (OperationsPerInvoke), so Op/s is messages
/// per second end to end. Both brokers get a per-session queue of 100,000 messages (see Setup); a message the broker
/// still drops fails the run after 30 s instead of hanging it. omnibroker runs with its policy enforced (publish and
/// per-delivery receive checks). Mosquitto keeps its other defaults, Nagle included: it writes every packet with its
/// own TLS record and send(), and Nagle lets the kernel coalesce them. "Server CPU µs/msg" is the broker process's
/// CPU time per message over all iterations after warm-up.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*ThroughputVsMosquitto*'
/// </summary>
[Config(typeof(ThroughputVsMosquittoConfig))]
public class ThroughputVsMosquittoBenchmarks
{
    public const string ServerCpuColumn = "Server CPU µs/msg";

    private const int Messages = 20_000;
    private const int PayloadSize = 64;
    private const int MessagesPerWrite = 100;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private BrokerFixture _broker = null!;
    private MqttTlsClient _subscriber = null!;
    private MqttTlsClient _publisher = null!;
    private Task _reader = null!;
    private CancellationTokenSource _stop = null!;
    private byte[] _batch = null!;
    private long _received;
    private long _waitFor = long.MaxValue;
    private TaskCompletionSource? _waiter;
    private long _serverTicksAtStart;
    private long _messagesMeasured;

    public static IEnumerable<BrokerTarget> Targets => BrokerFixture.Available(BrokerTarget.OmniBroker, BrokerTarget.OmniBrokerNoSpin, BrokerTarget.Mosquitto, BrokerTarget.MqttNetServer);

    [ParamsSource(nameof(Targets))]
    public BrokerTarget Target { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // omnibroker's default per-session queue (Mqtt:MaxQueuedMessagesPerSession = 1000) drops the oldest QoS 0
        // message when a burst outruns the subscriber (logged, event 1200, and counted); Mosquitto queues QoS 0 for an
        // online client without limit. Both get room for a whole burst so the run measures delivery, not drops.
        _broker = BrokerFixture.Start(Target,
            omniBrokerArguments: ["--Mqtt:MaxQueuedMessagesPerSession=" + (5 * Messages).ToString(CultureInfo.InvariantCulture)],
            mosquittoLines: ["max_queued_messages " + (5 * Messages).ToString(CultureInfo.InvariantCulture)]);
        _stop = new CancellationTokenSource();
        using CancellationTokenSource timeout = new(s_timeout);
        _subscriber = MqttTlsClient.ConnectAsync(_broker.EndPoint, _broker.Credentials("backend-telemetry"), "backend-telemetry", 0, timeout.Token).GetAwaiter().GetResult();
        _subscriber.SubscribeAsync("devices/+/telemetry", 0, timeout.Token).GetAwaiter().GetResult();
        _publisher = MqttTlsClient.ConnectAsync(_broker.EndPoint, _broker.Credentials("sensor-001"), "sensor-001", 0, timeout.Token).GetAwaiter().GetResult();
        _reader = Task.Run(() => ReadLoopAsync(_stop.Token));

        byte[] payload = new byte[PayloadSize];
        payload.AsSpan().Fill((byte)'x');
        byte[] one = MqttTlsClient.EncodePublishQos0("devices/sensor-001/telemetry", payload);
        _batch = new byte[one.Length * MessagesPerWrite];
        for (int i = 0; i < MessagesPerWrite; i++)
        {
            one.CopyTo(_batch, i * one.Length);
        }

        PublishAll().GetAwaiter().GetResult();
        _serverTicksAtStart = _broker.Server.CpuTicks();
        _messagesMeasured = 0;
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task PublishAll()
    {
        TaskCompletionSource waiter = new(TaskCreationOptions.RunContinuationsAsynchronously);
        long target;
        lock (_lock)
        {
            target = _received + Messages;
            _waitFor = target;
            _waiter = waiter;
        }

        for (int sent = 0; sent < Messages; sent += MessagesPerWrite)
        {
            await _publisher.WriteAsync(_batch, _stop.Token).ConfigureAwait(false);
        }

        try
        {
            await waiter.Task.WaitAsync(s_timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            long missing = target - Interlocked.Read(ref _received);
            throw new InvalidOperationException($"{Target}: {missing} of {Messages} QoS 0 messages did not arrive within {s_timeout.TotalSeconds} s (dropped by the broker?)");
        }

        _messagesMeasured += Messages;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try
        {
            if (_messagesMeasured > 0 && !_broker.Server.HasExited)
            {
                double serverUs = (_broker.Server.CpuTicks() - _serverTicksAtStart) * 1_000_000.0 / BrokerProcess.ClockTicksPerSecond;
                ServerMeasurements.Record(typeof(ThroughputVsMosquittoBenchmarks), nameof(PublishAll), ServerCpuColumn, serverUs / _messagesMeasured, _messagesMeasured, (nameof(Target), Target));
            }

            _stop.Cancel();
            _publisher.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _subscriber.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _reader.ContinueWith(_ => { }, TaskScheduler.Default).Wait(TimeSpan.FromSeconds(5));
        }
        finally
        {
            _broker.Dispose();
            _stop.Dispose();
        }
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[64 * 1024];
        PublishCounter counter = default;
        while (true)
        {
            int read = await _subscriber.Stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return;
            }

            counter.Feed(buffer.AsSpan(0, read));
            lock (_lock)
            {
                _received = counter.Publishes;
                if (_received >= _waitFor)
                {
                    _waitFor = long.MaxValue;
                    _waiter!.TrySetResult();
                }
            }
        }
    }
}

internal sealed class ThroughputVsMosquittoConfig : ManualConfig
{
    public ThroughputVsMosquittoConfig()
    {
        // Target names such as OmniBrokerTlsResumeAllowed are longer than the default 20 characters.
        SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithMaxParameterColumnWidth(40);
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.OperationsPerSecond);
        AddColumn(new ServerMeasurementColumn(ThroughputVsMosquittoBenchmarks.ServerCpuColumn,
            "Broker process CPU time (utime+stime) per delivered message, over all iterations after warm-up", "0.00"));
    }
}
