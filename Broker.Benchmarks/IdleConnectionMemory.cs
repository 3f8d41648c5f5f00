using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using OmniBroker.Benchmarks.Support;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Memory per idle mutual-TLS connection. Every iteration starts a fresh broker process, warms it with 200
/// connect/disconnect cycles, reads its resident set size (VmRSS from /proc/&lt;pid&gt;/status), then opens
/// <see cref="Connections"/> MQTT connections (full TLS 1.3 handshake with the backend-telemetry certificate, CONNECT
/// with client id backend-telemetry-&lt;i&gt;, keep-alive 0) from 8 concurrent tasks, leaves them idle for 5 s and
/// reads VmRSS again. "KiB/conn" = (after - before) / connections: what the broker process holds per idle connection
/// (managed heap including not yet collected garbage, native TLS state, buffers, thread stacks); socket buffers live
/// in the kernel and are not counted. Target for omnibroker: under 64 KiB at 10,000 connections. The measured time
/// is how long opening all connections took. For omnibroker the benchmark also forces full GCs in the broker
/// (EventPipe, as dotnet-gcdump does; before the connections and after the RSS reading) to split the growth into
/// live managed heap and the rest, and reads RSS again after that GC. Needs about 2 x Connections file descriptors (the brokers are started
/// with the soft limit raised to the hard one; .NET raises its own) and as many loopback ephemeral ports.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*IdleConnectionMemory*'
/// </summary>
[Config(typeof(IdleConnectionMemoryConfig))]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1, invocationCount: 1)]
public class IdleConnectionMemory
{
    public const string PerConnectionColumn = "KiB/conn";
    public const string RssBeforeColumn = "RSS before MiB";
    public const string RssAfterColumn = "RSS after MiB";
    public const string AfterGcPerConnectionColumn = "KiB/conn after full GC";
    public const string ManagedPerConnectionColumn = "Managed KiB/conn";

    private const int WarmupConnections = 200;
    private const int Concurrency = 8;
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_probeTimeout = TimeSpan.FromSeconds(60);

    private BrokerFixture? _broker;
    private List<MqttTlsClient> _clients = [];
    private long _rssBeforeKiB;
    private long? _heapBefore;

    public static IEnumerable<BrokerTarget> Targets => BrokerFixture.Available(BrokerTarget.OmniBroker, BrokerTarget.OmniBrokerTlsResumeAllowed, BrokerTarget.Mosquitto);

    [ParamsSource(nameof(Targets))]
    public BrokerTarget Target { get; set; }

    [Params(10_000)]
    public int Connections { get; set; }

    [IterationSetup]
    public void StartBroker()
    {
        _broker = BrokerFixture.Start(Target, mosquittoLines: [BrokerFixture.MosquittoNoDelay]);
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(2));
        for (int i = 0; i < WarmupConnections; i++)
        {
            _broker.HandshakeOnceAsync("backend-telemetry", "backend-telemetry-warmup", timeout.Token).GetAwaiter().GetResult();
        }

        if (!BrokerFixture.IsMosquitto(Target))
        {
            _heapBefore = ManagedHeapProbe.HeapAfterFullGc(_broker.Server.Pid, s_probeTimeout);
        }

        Thread.Sleep(1000);
        _rssBeforeKiB = _broker.Server.RssKiB();
    }

    [Benchmark]
    public async Task OpenIdleConnections()
    {
        BrokerFixture broker = _broker!;
        ClientCredentials credentials = broker.Credentials("backend-telemetry");
        MqttTlsClient[] clients = new MqttTlsClient[Connections];
        try
        {
            using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(10));
            await Parallel.ForAsync(0, Connections, new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = timeout.Token },
                async (i, ct) => clients[i] = await MqttTlsClient.ConnectAsync(broker.EndPoint, credentials,
                    "backend-telemetry-" + i.ToString(CultureInfo.InvariantCulture), 0, ct).ConfigureAwait(false)).ConfigureAwait(false);
        }
        finally
        {
            _clients = clients.Where(c => c is not null).ToList();
        }

        await Task.Delay(s_settle).ConfigureAwait(false);
        if (broker.Server.HasExited)
        {
            throw new InvalidOperationException($"{Target} exited with {Connections} connections open; last log lines:{Environment.NewLine}{broker.Server.LogTail()}");
        }

        long after = broker.Server.RssKiB();
        Record(PerConnectionColumn, (after - _rssBeforeKiB) / (double)Connections);
        Record(RssBeforeColumn, _rssBeforeKiB / 1024.0);
        Record(RssAfterColumn, after / 1024.0);
        if (!BrokerFixture.IsMosquitto(Target))
        {
            // What of it is managed: the live GC heap after a forced full GC, before and after the connections.
            long? heapAfter = ManagedHeapProbe.HeapAfterFullGc(broker.Server.Pid, s_probeTimeout);
            if (_heapBefore is { } b && heapAfter is { } a)
            {
                Record(ManagedPerConnectionColumn, (a - b) / 1024.0 / Connections);
            }

            await Task.Delay(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            Record(AfterGcPerConnectionColumn, (broker.Server.RssKiB() - _rssBeforeKiB) / (double)Connections);
        }
    }

    private void Record(string metric, double value) =>
        ServerMeasurements.Record(typeof(IdleConnectionMemory), nameof(OpenIdleConnections), metric, value, 1,
            (nameof(Target), Target), (nameof(Connections), Connections));

    [IterationCleanup]
    public void StopBroker()
    {
        try
        {
            foreach (MqttTlsClient client in _clients)
            {
                client.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        finally
        {
            _clients = [];
            _broker?.Dispose();
            _broker = null;
        }
    }
}

internal sealed class IdleConnectionMemoryConfig : ManualConfig
{
    public IdleConnectionMemoryConfig()
    {
        // Target names such as OmniBrokerTlsResumeAllowed are longer than the default 20 characters.
        SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithMaxParameterColumnWidth(40);
        AddColumn(new ServerMeasurementColumn(IdleConnectionMemory.PerConnectionColumn,
            "Growth of the broker's VmRSS per idle mutual-TLS connection (KiB)", "0.0"));
        AddColumn(new ServerMeasurementColumn(IdleConnectionMemory.RssBeforeColumn, "Broker VmRSS after warm-up, before the connections (MiB)", "0.0"));
        AddColumn(new ServerMeasurementColumn(IdleConnectionMemory.RssAfterColumn, "Broker VmRSS with all connections idle (MiB)", "0.0"));
        AddColumn(new ServerMeasurementColumn(IdleConnectionMemory.AfterGcPerConnectionColumn,
            "omnibroker: VmRSS growth per connection 2 s after a forced full GC (garbage of the handshakes gone)", "0.0"));
        AddColumn(new ServerMeasurementColumn(IdleConnectionMemory.ManagedPerConnectionColumn,
            "omnibroker: growth of the live GC heap (after forced full GCs) per connection; the rest of KiB/conn is native (OpenSSL, sockets, stacks) or free heap space", "0.0"));
    }
}
