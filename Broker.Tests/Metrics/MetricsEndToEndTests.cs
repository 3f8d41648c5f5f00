using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// /metrics and the admin API of the real host on 127.0.0.1, moved by real TLS handshakes and real MQTT traffic.
/// Counters are process-wide (other test classes handshake concurrently), so checks are deltas that may only be larger.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class MetricsEndToEndTests : IClassFixture<MetricsEndToEndTests.Fixture>
{
    private readonly Fixture _fixture;

    public MetricsEndToEndTests(Fixture fixture)
    {
        _fixture = fixture;
    }

    public sealed class Fixture : IAsyncLifetime
    {
        private string _directory = null!;

        public TestPki Pki { get; } = TestPki.Create();

        public TestBroker Broker { get; private set; } = null!;

        public HttpClient Http { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            _directory = Support.TempDirectory.Create("omnibroker-metrics");
            var files = Pki.WriteFiles(Path.Combine(_directory, "tls"));
            var policies = Path.Combine(_directory, "policies");
            Directory.CreateDirectory(policies);
            File.WriteAllText(Path.Combine(policies, "tests.yaml"), TestPolicy);
            Broker = await TestBroker.StartAsync(files, Path.Combine(_directory, "data"),
                settings: new Dictionary<string, string?>
                {
                    ["Policy:Directory"] = policies,
                    // The test PKI publishes no CRL or OCSP responder; revocation has its own tests.
                    ["Revocation:Mode"] = "none",
                });
            Http = new HttpClient { BaseAddress = Broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        }

        public async Task DisposeAsync()
        {
            Http.Dispose();
            await Broker.DisposeAsync();
            Pki.Dispose();
            Support.TempDirectory.Delete(_directory);
        }
    }

    /// <summary>Devices of the test PKI (O=Acme, OU=tests) may connect and publish/subscribe anywhere.</summary>
    internal const string TestPolicy = """
        version: 1
        rules:
          - id: tests-connect
            effect: allow
            actions: [connect]
            match:
              cert.o: Acme
              cert.ou: tests
          - id: tests-pubsub
            effect: allow
            actions: [publish, subscribe, receive]
            match:
              cert.o: Acme
              cert.ou: tests
            topics: ["#"]
          - id: metrics-admin
            effect: allow
            actions: [admin]
            match:
              cert.cn: metrics-admin
        """;

    private async Task<Exposition> ScrapeAsync()
    {
        var text = await _fixture.Http.GetStringAsync("/metrics");
        return Exposition.Parse(text);
    }

    /// <summary>Scrapes until <paramref name="done"/> holds (bounded: 10 s); the last scrape is returned either way.</summary>
    private async Task<Exposition> ScrapeUntilAsync(Func<Exposition, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var e = await ScrapeAsync();
            if (done(e) || DateTime.UtcNow > deadline)
            {
                return e;
            }

            await Task.Delay(50);
        }
    }

    private static double Delta(Exposition before, Exposition after, string name, params string[] labels) =>
        after.ValueOrZero(name, labels) - before.ValueOrZero(name, labels);

    private async Task AssertRefusalCountedAsync(X509Certificate2? clientCertificate, string reason)
    {
        string[] labels = ["outcome=failure", "reason=" + reason];
        var before = await ScrapeAsync();

        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, _fixture.Pki.Root, clientCertificate,
            clientCertificate is null ? null : [_fixture.Pki.IssuerOf(clientCertificate)]);

        result.Outcome.Should().NotBe(TlsClientOutcome.ConnAck, "the broker must refuse this client");
        var after = await ScrapeUntilAsync(e => Delta(before, e, "omnibroker_tls_handshakes_total", labels) >= 1);
        Delta(before, after, "omnibroker_tls_handshakes_total", labels).Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_count", "outcome=failure").Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task Handshake_UntrustedCertificate_CountsReasonUntrusted() =>
        await AssertRefusalCountedAsync(_fixture.Pki.OtherCa, "untrusted");

    [Fact]
    public async Task Handshake_NoCertificate_CountsReasonNoCert() =>
        await AssertRefusalCountedAsync(null, "no_cert");

    [Fact]
    public async Task Handshake_ExpiredCertificate_CountsReasonExpired() =>
        await AssertRefusalCountedAsync(_fixture.Pki.Expired, "expired");

    [Fact]
    public async Task MetricsEndpoint_ServesTextFormat004_ThatPassesPromtool()
    {
        // A connected client populates the per-client gauges too.
        await using var client = await MqttTlsClient.ConnectAsync(_fixture, _fixture.Pki.Good, "metrics-promtool");

        using var response = await _fixture.Http.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.ToString().Should().Be("text/plain; version=0.0.4; charset=utf-8");
        var (exit, output) = Promtool.CheckMetrics(text);
        exit.Should().Be(0, "promtool check metrics reported:\n{0}\non:\n{1}", output, text);
        var e = Exposition.Parse(text);
        e.Find("omnibroker_client_certificates_expiring", "within_days=90").Should().ContainSingle().Which.Value.Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task Connect_And_PublishQos1_CountConnectionAndMessageWithPayloadBytes()
    {
        var before = await ScrapeAsync();

        await using (var client = await MqttTlsClient.ConnectAsync(_fixture, _fixture.Pki.Good, "metrics-publisher"))
        {
            await client.PublishQos1Async("metrics/e2e", new byte[1234], packetId: 7);

            var after = await ScrapeUntilAsync(e => Delta(before, e, "omnibroker_messages_received_total", "qos=1") >= 1);
            Delta(before, after, "omnibroker_messages_received_total", "qos=1").Should().BeGreaterThanOrEqualTo(1);
            Delta(before, after, "omnibroker_messages_received_bytes_total", "qos=1").Should().BeGreaterThanOrEqualTo(1234);
            Delta(before, after, "omnibroker_connections_total", "protocol=3.1.1").Should().BeGreaterThanOrEqualTo(1);
            after.Value("omnibroker_connections_active", "protocol=3.1.1").Should().BeGreaterThanOrEqualTo(1);
            Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=success", "reason=none").Should().BeGreaterThanOrEqualTo(1);
            Delta(before, after, "omnibroker_authorization_decisions_total", "action=publish", "result=allow").Should().BeGreaterThanOrEqualTo(1);
        }
    }

    [Fact]
    public async Task AdminApi_ListsConnectedClientWithCertificateDetails_AndDeleteDisconnectsIt()
    {
        var certificate = _fixture.Pki.IssueLeaf("metrics-admin-listed");
        await using var client = await MqttTlsClient.ConnectAsync(_fixture, certificate, "metrics-listed");

        using var list = await _fixture.Http.GetAsync("/api/clients");
        list.StatusCode.Should().Be(HttpStatusCode.OK);
        var clients = await list.Content.ReadFromJsonAsync<JsonElement>();
        var entry = clients.EnumerateArray().Single(c => c.GetProperty("id").GetString() == "metrics-listed");
        entry.GetProperty("sha256Fingerprint").GetString().Should().Be(certificate.GetCertHashString(HashAlgorithmName.SHA256));
        entry.GetProperty("subject").GetString().Should().Be(certificate.Subject);
        entry.GetProperty("issuer").GetString().Should().Be(certificate.Issuer);
        entry.GetProperty("serialNumber").GetString().Should().Be(certificate.SerialNumber);
        entry.GetProperty("protocolVersion").GetString().Should().Be("3.1.1");
        entry.GetProperty("remoteAddress").GetString().Should().StartWith("127.0.0.1:");
        entry.GetProperty("notAfter").GetDateTimeOffset().Should().BeCloseTo(new DateTimeOffset(certificate.NotAfter), TimeSpan.FromSeconds(1));

        using var delete = await _fixture.Http.DeleteAsync("/api/clients/metrics-listed");
        delete.StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await client.ReadUntilClosedAsync()).Should().BeTrue("the broker must close the connection of a disconnected client");
        var after = await _fixture.Http.GetFromJsonAsync<JsonElement>("/api/clients");
        after.EnumerateArray().Select(c => c.GetProperty("id").GetString()).Should().NotContain("metrics-listed");
    }

    [Fact]
    public async Task AdminApi_DeleteUnknownClient_Is404()
    {
        using var delete = await _fixture.Http.DeleteAsync("/api/clients/no-such-client-" + Guid.NewGuid().ToString("N"));

        delete.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AdminApi_ExpiringCertificates_ListsOnlyThoseWithinTheDays()
    {
        var now = DateTimeOffset.UtcNow;
        var soon = _fixture.Pki.IssueLeaf("metrics-expiring-soon", notBefore: now.AddDays(-1), notAfter: now.AddDays(5));
        await using var client = await MqttTlsClient.ConnectAsync(_fixture, soon, "metrics-expiring");

        var within10 = await _fixture.Http.GetFromJsonAsync<JsonElement>("/api/certificates/expiring?days=10");
        var within2 = await _fixture.Http.GetFromJsonAsync<JsonElement>("/api/certificates/expiring?days=2");
        using var bad = await _fixture.Http.GetAsync("/api/certificates/expiring?days=soon");

        within10.GetProperty("days").GetInt32().Should().Be(10);
        Ids(within10).Should().Contain("metrics-expiring");
        Ids(within2).Should().NotContain("metrics-expiring");
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest);

        var e = await ScrapeAsync();
        e.Value("omnibroker_client_certificates_expiring", "within_days=7").Should().BeGreaterThanOrEqualTo(1);
        e.Value("omnibroker_client_certificate_soonest_expiry_timestamp_seconds")
            .Should().BeLessThanOrEqualTo(new DateTimeOffset(soon.NotAfter).ToUnixTimeSeconds() + 1);

        static IEnumerable<string?> Ids(JsonElement answer) =>
            answer.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Probes_HealthzAndReadyz_AnswerOkOnceStarted()
    {
        using var health = await _fixture.Http.GetAsync("/healthz");
        using var ready = await _fixture.Http.GetAsync("/readyz");

        health.StatusCode.Should().Be(HttpStatusCode.OK);
        ready.StatusCode.Should().Be(HttpStatusCode.OK, await ready.Content.ReadAsStringAsync());
        var body = await ready.Content.ReadFromJsonAsync<JsonElement>();
        body.GetProperty("status").GetString().Should().Be("ready");
        body.GetProperty("checks").GetProperty("listeners").GetBoolean().Should().BeTrue();
    }

    /// <summary>MQTT 3.1.1 over the broker's TLS listener, with hand-built packets.</summary>
    internal sealed class MqttTlsClient : IAsyncDisposable
    {
        private readonly SslStream _ssl;

        private MqttTlsClient(SslStream ssl)
        {
            _ssl = ssl;
        }

        public static async Task<MqttTlsClient> ConnectAsync(Fixture fixture, X509Certificate2 certificate, string clientId)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var ssl = await TlsTestClient.HandshakeAsync(fixture.Broker.MqttPort, fixture.Pki.Root, certificate,
                [fixture.Pki.IssuerOf(certificate)], cancellationToken: timeout.Token);
            var client = new MqttTlsClient(ssl);
            var id = Encoding.UTF8.GetBytes(clientId);
            var body = new List<byte> { 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C };
            body.AddRange(U16(id.Length));
            body.AddRange(id);
            await client.SendAsync(0x10, body, timeout.Token);
            var connack = await client.ReadExactlyAsync(4, timeout.Token);
            connack.Should().Equal([0x20, 0x02, 0x00, 0x00], "CONNACK accepted for {0}", clientId);
            return client;
        }

        public async Task PublishQos1Async(string topic, byte[] payload, ushort packetId)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var t = Encoding.UTF8.GetBytes(topic);
            var body = new List<byte>();
            body.AddRange(U16(t.Length));
            body.AddRange(t);
            body.AddRange(U16(packetId));
            body.AddRange(payload);
            await SendAsync(0x32, body, timeout.Token);
            var puback = await ReadExactlyAsync(4, timeout.Token);
            puback.Should().Equal([0x40, 0x02, (byte)(packetId >> 8), (byte)packetId]);
        }

        /// <summary>True when the broker closes the connection within 10 s.</summary>
        public async Task<bool> ReadUntilClosedAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var buffer = new byte[256];
            try
            {
                while (await _ssl.ReadAsync(buffer, timeout.Token) > 0)
                {
                }

                return true;
            }
            catch (IOException)
            {
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        private async Task SendAsync(byte header, List<byte> body, CancellationToken cancellationToken)
        {
            var length = new byte[MqttVariableByteInteger.MaxSize];
            var packet = new List<byte> { header };
            packet.AddRange(length.AsSpan(0, MqttVariableByteInteger.Encode(length, body.Count)).ToArray());
            packet.AddRange(body);
            await _ssl.WriteAsync(packet.ToArray(), cancellationToken);
            await _ssl.FlushAsync(cancellationToken);
        }

        private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
        {
            var buffer = new byte[count];
            await _ssl.ReadExactlyAsync(buffer, cancellationToken);
            return buffer;
        }

        private static byte[] U16(int value)
        {
            var b = new byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)value);
            return b;
        }

        public async ValueTask DisposeAsync() => await _ssl.DisposeAsync();
    }
}
