using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

/// <summary>Real TLS handshakes against the real host on 127.0.0.1, with real certificates, on the default TLS engine
/// (<c>Tls:Engine=Direct</c>).</summary>
public sealed class ClientCertificateHandshakeTests(ClientCertificateHandshakeTestsBase.Fixture fixture)
    : ClientCertificateHandshakeTestsBase(fixture), IClassFixture<ClientCertificateHandshakeTestsBase.Fixture>
{
}

/// <summary>The same handshakes through Kestrel's HTTPS middleware (<c>Tls:Engine=Kestrel</c>): both engines must
/// refuse, time out and log alike.</summary>
public sealed class ClientCertificateHandshakeKestrelEngineTests(KestrelHandshakeFixture fixture)
    : ClientCertificateHandshakeTestsBase(fixture), IClassFixture<KestrelHandshakeFixture>
{
}

public sealed class KestrelHandshakeFixture() : ClientCertificateHandshakeTestsBase.Fixture(TlsEngine.Kestrel);

public abstract class ClientCertificateHandshakeTestsBase
{
    private const int RefusedEventId = 2001;
    private readonly Fixture _fixture;

    protected ClientCertificateHandshakeTestsBase(Fixture fixture)
    {
        _fixture = fixture;
    }

    public class Fixture : IAsyncLifetime
    {
        private readonly TlsEngine _engine;
        private string? _directory;

        public Fixture()
            : this(TlsEngine.Direct)
        {
        }

        protected Fixture(TlsEngine engine)
        {
            _engine = engine;
        }

        public TestPki Pki { get; } = TestPki.Create();

        public TestBroker Broker { get; private set; } = null!;

        public RecordingObserver Observer { get; } = new();

        public async Task InitializeAsync()
        {
            _directory = TempDirectory.Create("omnibroker-handshake");
            var files = Pki.WriteFiles(Path.Combine(_directory, "tls"));
            var settings = new Dictionary<string, string?> { ["Tls:Engine"] = _engine.ToString() };
            Broker = await TestBroker.StartAsync(files, Path.Combine(_directory, "data"), settings, services: services =>
            {
                services.AddSingleton<IRevocationChecker>(new SerialRevocationChecker());
                services.AddSingleton<IHandshakeObserver>(Observer);
                // Authentication is under test here, not the policy: the test certificates match no policy rule.
                services.AddSingleton<OmniBroker.Mqtt.Abstractions.IMqttAuthorizer>(OmniBroker.Mqtt.Abstractions.AllowAllAuthorizer.Instance);
            });
        }

        public async Task DisposeAsync()
        {
            await Broker.DisposeAsync();
            Pki.Dispose();
            TempDirectory.Delete(_directory!);
        }
    }

    /// <summary>Treats leaves whose CN starts with "revoked" as revoked and "unknown" as not answerable (hard fail).</summary>
    private sealed class SerialRevocationChecker : IRevocationChecker
    {
        public ValueTask<RevocationCheckResult> CheckAsync(IReadOnlyList<X509Certificate2> chain, CancellationToken cancellationToken)
        {
            var cn = chain[0].GetNameInfo(X509NameType.SimpleName, false);
            return ValueTask.FromResult(cn.StartsWith("revoked", StringComparison.Ordinal)
                ? new RevocationCheckResult(RevocationStatus.Revoked, false, "listed on the test CRL")
                : cn.StartsWith("unknown", StringComparison.Ordinal)
                    ? new RevocationCheckResult(RevocationStatus.Unknown, false, "responder unreachable")
                    : new RevocationCheckResult(RevocationStatus.Good, true, "good"));
        }
    }

    public sealed class RecordingObserver : IHandshakeObserver
    {
        private readonly List<(CertificateFailureReason Reason, TimeSpan Duration)> _events = [];

        public IReadOnlyList<(CertificateFailureReason Reason, TimeSpan Duration)> Events
        {
            get
            {
                lock (_events)
                {
                    return _events.ToArray();
                }
            }
        }

        public void OnHandshakeSucceeded(TimeSpan duration)
        {
            lock (_events)
            {
                _events.Add((CertificateFailureReason.None, duration));
            }
        }

        public void OnHandshakeFailed(CertificateFailureReason reason, TimeSpan duration)
        {
            lock (_events)
            {
                _events.Add((reason, duration));
            }
        }
    }

    private TestPki Pki => _fixture.Pki;

    private CapturingLoggerProvider Logs => _fixture.Broker.Logs;

    /// <summary>Chain errors are refused by the TLS layer: depending on the TLS version and platform the client's
    /// handshake fails or completes and then reads the alert/close. Either way the MQTT CONNECT gets no answer.</summary>
    private static void AssertRefusedBeforeMqtt(TlsClientResult result)
    {
        result.Outcome.Should().NotBe(TlsClientOutcome.ConnAck);
        result.Response.Should().BeEmpty();
    }

    private async Task<CapturedLog> AssertRefusedOnceAsync(X509Certificate2 leaf, string reasonLabel)
    {
        var entry = await Logs.WaitForAsync(e => e.EventId.Id == RefusedEventId && e.Value("Serial") == leaf.SerialNumber);
        entry.Value("Reason").Should().Be(reasonLabel);
        entry.Value("Subject").Should().Be(leaf.Subject);
        entry.Value("Issuer").Should().Be(leaf.Issuer);
        entry.Value("RemoteAddress").Should().StartWith("127.0.0.1:");
        // Let a duplicate (a second component logging the same refusal) appear before counting.
        await Task.Delay(200);
        Logs.WithEventId(RefusedEventId).Count(e => e.Value("Serial") == leaf.SerialNumber).Should().Be(1);
        return entry;
    }

    [Fact]
    public async Task Handshake_NoClientCertificate_RefusedAndLoggedNoCert()
    {
        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, clientCertificate: null, protocols: SslProtocols.Tls12);

        AssertRefusedBeforeMqtt(result);
        var entry = await Logs.WaitForAsync(e => e.EventId.Id == RefusedEventId && e.Value("Reason") == "no_cert");
        entry.Level.Should().Be(LogLevel.Warning);
        entry.Value("Serial").Should().Be("-");
        await Task.Delay(200);
        Logs.WithEventId(RefusedEventId).Count(e => e.Value("Reason") == "no_cert").Should().Be(1, "only this test connects without a certificate");
    }

    [Fact]
    public async Task Handshake_UntrustedCa_RefusedAndLoggedUntrusted()
    {
        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, Pki.OtherCa, [Pki.OtherIntermediate], SslProtocols.Tls12);

        AssertRefusedBeforeMqtt(result);
        var entry = await AssertRefusedOnceAsync(Pki.OtherCa, "untrusted");
        entry.Level.Should().Be(LogLevel.Warning);
    }

    [Fact]
    public async Task Handshake_ExpiredCertificate_RefusedAndLoggedExpired()
    {
        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, Pki.Expired, [Pki.Intermediate], SslProtocols.Tls12);

        AssertRefusedBeforeMqtt(result);
        var entry = await AssertRefusedOnceAsync(Pki.Expired, "expired");
        entry.Value("Detail").Should().Contain("expired at");
    }

    [Fact]
    public async Task Handshake_NotYetValidCertificate_RefusedAndLoggedNotYetValid()
    {
        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, Pki.NotYetValid, [Pki.Intermediate], SslProtocols.Tls12);

        AssertRefusedBeforeMqtt(result);
        await AssertRefusedOnceAsync(Pki.NotYetValid, "not_yet_valid");
    }

    [Fact]
    public async Task Handshake_MissingClientAuthEku_RefusedAndLoggedBadKeyUsage()
    {
        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, Pki.NoClientAuth, [Pki.Intermediate], SslProtocols.Tls12);

        AssertRefusedBeforeMqtt(result);
        var entry = await AssertRefusedOnceAsync(Pki.NoClientAuth, "bad_key_usage");
        entry.Value("Detail").Should().Contain("clientAuth");
    }

    [Fact]
    public async Task Handshake_UntrustedCaOverTls13_ConnectionClosedWithoutConnAckAndLoggedOnce()
    {
        // TLS 1.3 clients finish their side before the server has checked the certificate: the refusal shows as a close.
        var leaf = Pki.IssueLeaf("tls13-other", otherCa: true);

        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.OtherIntermediate], SslProtocols.Tls13);

        AssertRefusedBeforeMqtt(result);
        await AssertRefusedOnceAsync(leaf, "untrusted");
    }

    [Fact]
    public async Task Handshake_RevokedCertificate_ClosedAfterHandshakeAndLoggedRevoked()
    {
        var leaf = Pki.IssueLeaf("revoked-device");

        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.Intermediate]);

        result.Outcome.Should().Be(TlsClientOutcome.ClosedAfterHandshake);
        result.Response.Should().BeEmpty();
        var entry = await AssertRefusedOnceAsync(leaf, "revoked");
        entry.Value("Detail").Should().Be("listed on the test CRL");
    }

    [Fact]
    public async Task Handshake_RevocationUnknownUnderHardFail_ClosedAndLoggedRevocationUnknown()
    {
        var leaf = Pki.IssueLeaf("unknown-device");

        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.Intermediate]);

        result.Outcome.Should().Be(TlsClientOutcome.ClosedAfterHandshake);
        await AssertRefusedOnceAsync(leaf, "revocation_unknown");
    }

    [Fact]
    public async Task Handshake_GoodCertificate_IdentityPublishedAndConnAckReceived()
    {
        var leaf = Pki.IssueLeaf("good-connack");

        var result = await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.Intermediate]);

        var accepted = await Logs.WaitForAsync(e => e.EventId.Id == 2000 && e.Value("Serial") == leaf.SerialNumber);
        accepted.Value("Subject").Should().Be(leaf.Subject);
        Logs.WithEventId(RefusedEventId).Should().NotContain(e => e.Value("Serial") == leaf.SerialNumber);
        result.Outcome.Should().Be(TlsClientOutcome.ConnAck, "the engine answers CONNECT once the identity feature is set");
        result.Response.Should().Equal(0x20, 0x02, 0x00, 0x00);
    }

    [Fact]
    public async Task Handshake_GoodCertificateConnected_IdentityInRegistryWhileConnected()
    {
        var leaf = Pki.IssueLeaf("registry-device");

        await using var ssl = await TlsTestClient.HandshakeAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.Intermediate]);
        await ssl.WriteAsync(TlsTestClient.Connect311);
        var registry = _fixture.Broker.App.Services.GetRequiredService<IConnectedIdentityRegistry>();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!registry.Snapshot().Any(i => i.Chain[0].SerialNumber == leaf.SerialNumber) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var identity = registry.Snapshot().Should().ContainSingle(i => i.Chain[0].SerialNumber == leaf.SerialNumber).Subject;
        identity.Chain.Select(c => c.Thumbprint).Should().Equal(leaf.Thumbprint, Pki.Intermediate.Thumbprint, Pki.Root.Thumbprint);
    }

    [Fact]
    public async Task Handshake_EveryOutcome_ReportedToObserver()
    {
        var leaf = Pki.IssueLeaf("observed-other", otherCa: true);
        var before = _fixture.Observer.Events.Count(e => e.Reason == CertificateFailureReason.Untrusted);

        await TlsTestClient.ConnectAsync(_fixture.Broker.MqttPort, Pki.Root, leaf, [Pki.OtherIntermediate], SslProtocols.Tls12);
        await AssertRefusedOnceAsync(leaf, "untrusted");

        _fixture.Observer.Events.Count(e => e.Reason == CertificateFailureReason.Untrusted).Should().BeGreaterThan(before);
        _fixture.Observer.Events.Should().OnlyContain(e => e.Duration >= TimeSpan.Zero);
    }

    [Fact]
    public async Task Handshake_PlainTcpClientSendsGarbage_LoggedOnceAsTlsError()
    {
        using var tcp = new System.Net.Sockets.TcpClient(System.Net.Sockets.AddressFamily.InterNetwork);
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, _fixture.Broker.MqttPort);
        var local = tcp.Client.LocalEndPoint!.ToString();
        // An MQTT CONNECT in clear text is not a TLS ClientHello.
        await tcp.GetStream().WriteAsync(TlsTestClient.Connect311);
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            while (await tcp.GetStream().ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        var entry = await Logs.WaitForAsync(e => e.EventId.Id == RefusedEventId && e.Value("RemoteAddress") == local);
        entry.Value("Reason").Should().Be("tls_error");
        await Task.Delay(200);
        Logs.WithEventId(RefusedEventId).Count(e => e.Value("RemoteAddress") == local).Should().Be(1);
    }
}
