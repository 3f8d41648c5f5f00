using System.Globalization;
using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Interop;

/// <summary>
/// The real host for the Eclipse Paho interoperability suites (Interop/paho, vendored unmodified), one per test class,
/// with a <see cref="TestPki"/> and a <see cref="TlsClientTunnel"/> that presents a device certificate, because the
/// suites speak plain TCP and the broker admits only mutual TLS. The policy allows what the suites do (connect with
/// any client id, publish, subscribe to and receive everything) except subscribing to test/nosubscribe: the suites'
/// test_subscribe_failure expects that refusal while their cleanup subscribes to '#', which stays allowed.
/// Mqtt:MaximumKeepAlive is 60 s, which the 5.0 test_server_keep_alive expects as Server Keep Alive.
/// </summary>
public sealed class PahoInteropBroker : IAsyncLifetime
{
    /// <summary>Longest a single Paho test may take (the slowest, test_will_delay, sleeps about 10 s).</summary>
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(120);

    public const string Policy = """
        # Paho interoperability suites: the test device may do everything, except subscribe to test/nosubscribe.
        version: 1
        rules:
          - id: paho-connect
            effect: allow
            actions: [connect]
            match:
              cert.ou: tests
          - id: paho-everything
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.ou: tests
            topics: ["#"]
          - id: paho-nosubscribe
            description: test_subscribe_failure expects this subscription to be refused.
            effect: deny
            actions: [subscribe]
            match:
              cert.ou: tests
            topics: [test/nosubscribe]
        """;

    private const string Python = "/usr/bin/python3";

    /// <summary>Factor on the suites' socket timeouts (0.5 s for every answer, CONNACK included).</summary>
    private const int TimeoutScale = 6;

    private readonly string _directory = TempDirectory.Create("omnibroker-paho");
    private readonly TestPki _pki = TestPki.Create();
    private TestBroker? _broker;
    private TlsClientTunnel? _tunnel;

    public TestBroker Broker => _broker ?? throw new InvalidOperationException("the broker is not started");

    public TlsClientTunnel Tunnel => _tunnel ?? throw new InvalidOperationException("the tunnel is not started");

    public async Task InitializeAsync()
    {
        var files = _pki.WriteFiles(Path.Combine(_directory, "pki"));
        var policies = Path.Combine(_directory, "policies");
        Directory.CreateDirectory(policies);
        await File.WriteAllTextAsync(Path.Combine(policies, "paho.yaml"), Policy);
        _broker = await TestBroker.StartAsync(files, settings: new Dictionary<string, string?>
        {
            ["Policy:Directory"] = policies,
            // The test PKI has no CRL or OCSP responder.
            ["Revocation:Mode"] = "none",
            ["Mqtt:MaximumKeepAlive"] = "60",
            // The tunnel keeps TLS connections ready (handshake done, no CONNECT yet) for up to 30 s.
            ["Mqtt:ConnectTimeout"] = "60s",
        });
        _tunnel = TlsClientTunnel.Start(_broker.MqttPort, _pki.Root, _pki.Good, _pki.Intermediate);
        await WarmUpAsync();
    }

    /// <summary>
    /// The suites give CONNACK 0.5 s: a cold broker (first CONNECT, first SUBSCRIBE and PUBLISH of each version go
    /// through the JIT) on a loaded machine can miss that. So every path the suites use runs once through the
    /// tunnel before the first test, and the tunnel's ready TLS connections are in place.
    /// </summary>
    private async Task WarmUpAsync()
    {
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500, MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            var (client, connAck) = await ConnectWarmUpAsync(version);
            await using (client)
            {
                connAck.ReasonCode.Should().Be(MqttReasonCode.Success, "the warm-up client must connect through the tunnel\n" + BrokerWarnings());
                await client.SubscribeAsync("warm-up/#", MqttQos.ExactlyOnce);
                await client.PublishAsync("warm-up/x", "x");
                await client.ExpectPublishAsync();
                await client.SendAsync(new DisconnectPacket());
            }
        }
        for (var i = 0; i < 100 && Tunnel.ReadyCount < TlsClientTunnel.ReadyConnections; i++)
        {
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// The warm-up CONNECT through the tunnel, tried up to three times: on a machine loaded by the whole suite, a ready
    /// TLS connection the tunnel opened at start can be closed by the broker before the CONNECT arrives (its handshake
    /// finished on the client's side, then the broker's handshake deadline or queue timeout ran out while the suite
    /// kept both cores busy), and the client then sees a clean close instead of a CONNACK. The third failure is
    /// reported with the broker's warnings, which name the reason.
    /// </summary>
    private async Task<(RawMqttClient Client, ConnAckPacket ConnAck)> ConnectWarmUpAsync(MqttProtocolVersion version)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RawMqttClient.ConnectAsync(Tunnel.Port, RawMqttClient.Connect($"warm-up-{version}", version));
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // Closed before CONNACK: the next attempt takes another ready connection or a fresh handshake.
            }
            catch (InvalidOperationException ex)
            {
                throw new InvalidOperationException($"the warm-up client could not connect through the tunnel in 3 attempts: {ex.Message}\n{BrokerWarnings()}", ex);
            }
        }
    }

    /// <summary>Runs one test of a suite in its own python3 process, bounded by <see cref="TestTimeout"/>; returns
    /// the process result and what the broker logged meanwhile (for failure messages).</summary>
    public async Task<(ClientResult Result, string BrokerLog)> RunAsync(string suite, string test)
    {
        var logged = Broker.Logs.Entries.Count;
        var result = await RunProcessAsync(suite, test);
        var log = Broker.Logs.Entries.Skip(logged).TakeLast(80).Select(e => e.ToString());
        return (result, "broker log during the test:\n" + string.Join("\n", log));
    }

    private async Task<ClientResult> RunProcessAsync(string suite, string test)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Interop", "run_paho_test.py");
        if (!File.Exists(script))
        {
            throw new FileNotFoundException("the Paho runner was not copied to the test output", script);
        }
        // -B: no __pycache__ next to the vendored files; -u: unbuffered, so a killed test still shows its output.
        // PAHO_TIMEOUT_SCALE: see run_paho_test.py (the suites' 0.5 s socket timeout, on a loaded machine).
        using var process = ClientProcess.Start("/usr/bin/env", [$"PAHO_TIMEOUT_SCALE={TimeoutScale}", Python, "-B", "-u", script, suite, test, "127.0.0.1", Tunnel.Port.ToString(CultureInfo.InvariantCulture)]);
        return await process.WaitForExitAsync(TestTimeout);
    }

    private string BrokerWarnings() =>
        "broker warnings:\n" + string.Join("\n", Broker.Logs.Entries.Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning).TakeLast(30));

    public async Task DisposeAsync()
    {
        if (_tunnel is not null)
        {
            await _tunnel.DisposeAsync();
        }
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
        _pki.Dispose();
        TempDirectory.Delete(_directory);
    }
}
