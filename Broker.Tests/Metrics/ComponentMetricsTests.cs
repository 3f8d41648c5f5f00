using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Diagnostics;
using OmniBroker.Auth.Revocation;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy.Diagnostics;
using Xunit;
using System.Diagnostics.Metrics;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// The components' meter classes (engine, TLS, revocation, policy), created from the host's IMeterFactory and read
/// back through OpenTelemetry's Prometheus exporter over a real HTTP scrape. Other tests may record concurrently,
/// so counter checks compare a scrape before and after and allow for more, never less.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class ComponentMetricsTests : IAsyncLifetime
{
    private readonly FakeEngineState _engine = new();
    private readonly List<DateTimeOffset> _expiries = [];
    private readonly List<CrlSourceStatus> _crls = [];
    private MetricsScrapeHost _host = null!;

    private MqttMetrics Mqtt => _host.Services.GetRequiredService<MqttMetrics>();
    private TlsMetrics Tls => _host.Services.GetRequiredService<TlsMetrics>();
    private RevocationMetrics Revocation => _host.Services.GetRequiredService<RevocationMetrics>();
    private PolicyMetrics Policy => _host.Services.GetRequiredService<PolicyMetrics>();

    public async Task InitializeAsync()
    {
        _host = await MetricsScrapeHost.StartAsync(services =>
        {
            services.AddSingleton(sp =>
            {
                var metrics = new MqttMetrics(sp.GetRequiredService<IMeterFactory>());
                metrics.Observe(_engine);
                return metrics;
            });
            services.AddSingleton(sp => new TlsMetrics(sp.GetRequiredService<IMeterFactory>(), () => _expiries.ToArray(), TimeProvider.System));
            services.AddSingleton(sp => new RevocationMetrics(null, sp.GetRequiredService<IMeterFactory>()) { CrlStatusProvider = () => _crls.ToArray() });
            services.AddSingleton(sp => new PolicyMetrics(sp.GetRequiredService<IMeterFactory>()));
            services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<MqttMetrics>());
            services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<TlsMetrics>());
            services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<RevocationMetrics>());
            services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<PolicyMetrics>());
        });
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task PrimedSeries_ExistForEveryFailureReasonDropReasonQosAndRevocationResult()
    {
        var e = await _host.ScrapeAsync();

        foreach (var reason in Enum.GetValues<CertificateFailureReason>().Where(r => r != CertificateFailureReason.None))
        {
            e.Find("omnibroker_tls_handshakes_total", "outcome=failure", "reason=" + reason.Label()).Should().ContainSingle(reason.Label());
        }

        e.Find("omnibroker_tls_handshakes_total", "outcome=success", "reason=revocation_soft_fail").Should().ContainSingle();
        foreach (var reason in new[] { "queue_full", "expired", "denied", "too_large", "session_ended" })
        {
            e.Find("omnibroker_messages_dropped_total", "reason=" + reason).Should().ContainSingle(reason);
        }

        foreach (var qos in new[] { "0", "1", "2" })
        {
            e.Find("omnibroker_messages_received_total", "qos=" + qos).Should().ContainSingle();
            e.Find("omnibroker_messages_sent_bytes_total", "qos=" + qos).Should().ContainSingle();
        }

        foreach (var result in new[] { "good", "revoked", "unknown_refused", "soft_fail_admitted" })
        {
            e.Find("omnibroker_revocation_checks_total", "result=" + result).Should().ContainSingle(result);
        }

        e.Find("omnibroker_revocation_live_drops_total", "reason=revoked").Should().ContainSingle();
        e.Find("omnibroker_revocation_live_drops_total", "reason=expired").Should().ContainSingle();
        e.Types["omnibroker_tls_handshakes_total"].Should().Be("counter");
        e.Types["omnibroker_connections_active"].Should().Be("gauge");
    }

    [Fact]
    public async Task HandshakeFailed_CountsItsReasonAndDuration()
    {
        var before = await _host.ScrapeAsync();

        Tls.OnHandshakeFailed(CertificateFailureReason.Expired, TimeSpan.FromMilliseconds(20));
        Tls.OnHandshakeFailed(CertificateFailureReason.Expired, TimeSpan.FromMilliseconds(30));

        var after = await _host.ScrapeAsync();
        Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=failure", "reason=expired").Should().BeGreaterThanOrEqualTo(2);
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_count", "outcome=failure").Should().BeGreaterThanOrEqualTo(2);
        // 0.02 and 0.03 both fall at or below 0.05 s: the cumulative bucket moves by both.
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_bucket", "outcome=failure", "le=0.05").Should().BeGreaterThanOrEqualTo(2);
    }

    [Fact]
    public async Task HandshakeAdmittedSoftFail_IsASuccessWithItsOwnReason_NotAPlainSuccess()
    {
        var before = await _host.ScrapeAsync();

        Tls.OnHandshakeAdmittedSoftFail(TimeSpan.FromMilliseconds(5));

        var after = await _host.ScrapeAsync();
        Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=success", "reason=revocation_soft_fail").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_count", "outcome=success").Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task EngineCounters_CountByQosReasonAndAction()
    {
        var before = await _host.ScrapeAsync();

        Mqtt.MessageIn(MqttQos.AtLeastOnce, 100);
        Mqtt.MessageOut(MqttQos.ExactlyOnce, 40);
        Mqtt.MessageDropped(MqttMetrics.DropReasons.QueueFull);
        Mqtt.MessageDropped("made_up_reason");
        Mqtt.AuthorizationDecision(MqttMetrics.Actions.Subscribe, allowed: false);
        Mqtt.ConnectionOpened(MqttProtocolVersion.V500);

        var after = await _host.ScrapeAsync();
        Delta(before, after, "omnibroker_messages_received_total", "qos=1").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_messages_received_bytes_total", "qos=1").Should().BeGreaterThanOrEqualTo(100);
        Delta(before, after, "omnibroker_messages_sent_total", "qos=2").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_messages_sent_bytes_total", "qos=2").Should().BeGreaterThanOrEqualTo(40);
        Delta(before, after, "omnibroker_messages_dropped_total", "reason=queue_full").Should().BeGreaterThanOrEqualTo(1);
        after.Find("omnibroker_messages_dropped_total", "reason=made_up_reason").Should().BeEmpty("label values are a fixed set");
        Delta(before, after, "omnibroker_messages_dropped_total", "reason=other").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_authorization_decisions_total", "action=subscribe", "result=deny").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_connections_total", "protocol=5.0").Should().BeGreaterThanOrEqualTo(1);
        Mqtt.ConnectionClosed(MqttProtocolVersion.V500);
    }

    [Fact]
    public async Task RevocationAndPolicyCounters_CountByResult()
    {
        var before = await _host.ScrapeAsync();

        Revocation.OcspRequest(OcspRequestResult.Timeout, TimeSpan.FromSeconds(5));
        Revocation.OcspCache(hit: false);
        Revocation.CrlCache(hit: true);
        Revocation.CrlFetch("file:/x.crl", success: false);
        Revocation.Decision(RevocationStatus.Unknown, admitted: true);
        Revocation.Decision(RevocationStatus.Unknown, admitted: false);
        Revocation.Decision(RevocationStatus.NotChecked, admitted: true);
        Revocation.ConnectionDropped(expired: false);
        Policy.Reloaded(ok: false);

        var after = await _host.ScrapeAsync();
        Delta(before, after, "omnibroker_ocsp_requests_total", "result=timeout").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_ocsp_request_duration_seconds_bucket", "le=5").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_revocation_cache_misses_total", "cache=ocsp").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_revocation_cache_hits_total", "cache=crl").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_crl_refreshes_total", "result=failure").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_revocation_checks_total", "result=soft_fail_admitted").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_revocation_checks_total", "result=unknown_refused").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_revocation_live_drops_total", "reason=revoked").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_policy_reloads_total", "result=failure").Should().BeGreaterThanOrEqualTo(1);
        after.Find("omnibroker_policy_last_reload_success").Should().Contain(s => s.Value == 0);
        Policy.Reloaded(ok: true);
    }

    [Fact]
    public async Task Gauges_ReportTheirComponentsState()
    {
        var now = DateTimeOffset.UtcNow;
        _engine.Sessions = 1_000_003;
        _crls.Add(new CrlSourceStatus("file:/a.crl", "CN=Test CA \"metrics\"", now.AddHours(-5), now.AddHours(1), 1, 0, now, null, null));
        _crls.Add(new CrlSourceStatus("http://ca/b.crl", "CN=Test CA \"metrics\"", now.AddHours(-2), now.AddHours(22), 2, 0, now, null, null));
        _crls.Add(new CrlSourceStatus("http://other/c.crl", "CN=Never Loaded", null, null, null, 0, null, now, "unreachable"));
        _expiries.AddRange([now.AddDays(3), now.AddDays(45)]);

        var e = await _host.ScrapeAsync();

        e.Find("omnibroker_sessions").Select(s => s.Value).Should().Contain(1_000_003);
        // Two sources of one issuer: the freshest counts; a never-loaded one has no age.
        e.Value("omnibroker_crl_age_seconds", "issuer=CN=Test CA \"metrics\"").Should().BeInRange(7190, 7300);
        e.Value("omnibroker_crl_next_update_timestamp_seconds", "issuer=CN=Test CA \"metrics\"")
            .Should().BeApproximately(now.AddHours(22).ToUnixTimeMilliseconds() / 1000.0, 0.01);
        e.Find("omnibroker_crl_age_seconds", "issuer=CN=Never Loaded").Should().BeEmpty();
        e.Find("omnibroker_client_certificates_expiring", "within_days=7").Should().Contain(s => s.Value >= 1);
        e.Find("omnibroker_client_certificate_soonest_expiry_timestamp_seconds")
            .Should().Contain(s => s.Value <= now.AddDays(3).ToUnixTimeMilliseconds() / 1000.0 + 0.01);
    }

    [Fact]
    public void ExpirySummary_BucketsAreCumulativeAndSoonestIsTheMinimum()
    {
        var now = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

        var summary = CertificateExpirySummary.Of(
            [now.AddDays(-1), now.AddHours(12), now.AddDays(5), now.AddDays(20), now.AddDays(60), now.AddDays(400)], now);

        summary.Count.Should().Be(6);
        // within_days: 0 (expired), 1, 7, 14, 30, 90
        summary.Buckets.Should().Equal(1, 2, 3, 3, 4, 5);
        summary.Soonest.Should().Be(now.AddDays(-1));
    }

    [Fact]
    public async Task FullExposition_WithEverySeriesPopulated_PassesPromtool()
    {
        var now = DateTimeOffset.UtcNow;
        _engine.Sessions = 2;
        _crls.Add(new CrlSourceStatus("file:/r.crl", "CN=Root\\CA", now.AddMinutes(-5), now.AddDays(1), 1, 0, now, null, null));
        _expiries.Add(now.AddDays(10));
        Tls.OnHandshakeSucceeded(TimeSpan.FromMilliseconds(4));
        Revocation.OcspRequest(OcspRequestResult.Good, TimeSpan.FromMilliseconds(10));
        var policies = Support.TempDirectory.Create("omnibroker-metrics-policy");
        File.WriteAllText(Path.Combine(policies, "tests.yaml"), MetricsEndToEndTests.TestPolicy);
        OmniBroker.Policy.PolicyAuthorizer.Load(policies, null, Policy);

        var text = await _host.ScrapeTextAsync();
        Support.TempDirectory.Delete(policies);

        var (exit, output) = Promtool.CheckMetrics(text);
        exit.Should().Be(0, "promtool check metrics reported:\n{0}\non:\n{1}", output, text);
        var e = Exposition.Parse(text);
        foreach (var name in ExportedSeries)
        {
            e.Find(name).Should().NotBeEmpty("{0} must be exposed", name);
        }
    }

    /// <summary>Every series the deploy/ files and docs/observability.md may rely on.</summary>
    internal static readonly string[] ExportedSeries =
    [
        "omnibroker_connections_total", "omnibroker_connections_active", "omnibroker_tls_handshakes_total",
        "omnibroker_tls_handshake_duration_seconds_bucket", "omnibroker_authorization_decisions_total",
        "omnibroker_messages_received_total", "omnibroker_messages_sent_total", "omnibroker_messages_received_bytes_total",
        "omnibroker_messages_sent_bytes_total", "omnibroker_messages_dropped_total", "omnibroker_retained_messages",
        "omnibroker_sessions", "omnibroker_subscriptions", "omnibroker_crl_age_seconds", "omnibroker_crl_next_update_timestamp_seconds",
        "omnibroker_ocsp_requests_total", "omnibroker_ocsp_request_duration_seconds_bucket", "omnibroker_revocation_cache_hits_total",
        "omnibroker_revocation_cache_misses_total", "omnibroker_crl_refreshes_total", "omnibroker_revocation_checks_total",
        "omnibroker_revocation_live_drops_total", "omnibroker_policy_reloads_total", "omnibroker_policy_version",
        "omnibroker_policy_last_reload_success", "omnibroker_client_certificates", "omnibroker_client_certificates_expiring",
        "omnibroker_client_certificate_soonest_expiry_timestamp_seconds", "omnibroker_admin_requests_total",
    ];

    private static double Delta(Exposition before, Exposition after, string name, params string[] labels) =>
        after.Value(name, labels) - before.ValueOrZero(name, labels);

    private sealed class FakeEngineState : IMqttStateSource
    {
        public long Sessions { get; set; }

        public long SessionCount => Sessions;

        public long SubscriptionCount => 3;

        public long RetainedMessageCount => 4;
    }
}

[CollectionDefinition(Name)]
public sealed class MetricsCollection
{
    public const string Name = "OmniBroker metrics";
}
