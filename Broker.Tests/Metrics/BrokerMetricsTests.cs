using System.Text;
using FluentAssertions;
using OmniBroker.Host.Metrics;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// BrokerMetrics' instruments through the host's exporter. The meter is process-wide and other tests may record
/// into it concurrently, so counter checks compare a scrape before and after and allow for more, never less.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class BrokerMetricsTests : IDisposable
{
    private readonly MetricsHost _host = new(new MetricsOptions(), []);

    public void Dispose() => _host.Dispose();

    private Exposition Scrape()
    {
        var bytes = _host.Scrape();
        bytes.Should().NotBeNull();
        return Exposition.Parse(Encoding.UTF8.GetString(bytes!));
    }

    [Fact]
    public void PrimedSeries_ExistForEveryFailureReasonDropReasonAndQos()
    {
        var e = Scrape();

        foreach (var reason in BrokerMetrics.HandshakeFailureReasons)
        {
            e.Find("omnibroker_tls_handshakes_total", "outcome=failure", "reason=" + reason).Should().ContainSingle(reason);
        }

        foreach (var reason in new[] { "queue_full", "expired", "denied", "too_large" })
        {
            e.Find("omnibroker_messages_dropped_total", "reason=" + reason).Should().ContainSingle(reason);
        }

        foreach (var qos in new[] { "0", "1", "2" })
        {
            e.Find("omnibroker_messages_received_total", "qos=" + qos).Should().ContainSingle();
            e.Find("omnibroker_messages_sent_bytes_total", "qos=" + qos).Should().ContainSingle();
        }

        e.Types["omnibroker_tls_handshakes_total"].Should().Be("counter");
        e.Types["omnibroker_connections_active"].Should().Be("gauge");
    }

    [Fact]
    public void HandshakeFailed_CountsItsReasonAndDuration()
    {
        var before = Scrape();

        BrokerMetrics.HandshakeFailed("expired", 0.02);
        BrokerMetrics.HandshakeFailed("expired", 0.03);

        var after = Scrape();
        Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=failure", "reason=expired").Should().BeGreaterThanOrEqualTo(2);
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_count", "outcome=failure").Should().BeGreaterThanOrEqualTo(2);
        // 0.02 and 0.03 both fall at or below 0.05 s: the cumulative bucket moves by both.
        Delta(before, after, "omnibroker_tls_handshake_duration_seconds_bucket", "outcome=failure", "le=0.05").Should().BeGreaterThanOrEqualTo(2);
    }

    [Fact]
    public void HandshakeFailed_UnknownLabel_CountsAsTlsErrorAndAddsNoSeries()
    {
        var before = Scrape();

        BrokerMetrics.HandshakeFailed("made_up_reason");

        var after = Scrape();
        after.Find("omnibroker_tls_handshakes_total", "reason=made_up_reason").Should().BeEmpty();
        Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=failure", "reason=tls_error").Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public void MessagesAndDrops_CountByQosAndReason()
    {
        var before = Scrape();

        BrokerMetrics.MessageIn(MqttQos.AtLeastOnce, 100);
        BrokerMetrics.MessageOut(MqttQos.ExactlyOnce, 40);
        BrokerMetrics.MessageDropped(BrokerMetrics.DropReasons.QueueFull);
        BrokerMetrics.AuthorizationDecision(BrokerMetrics.Actions.Subscribe, allowed: false);
        BrokerMetrics.PolicyReload(ok: true);
        BrokerMetrics.OcspRequest(BrokerMetrics.OcspResults.Timeout, 5);

        var after = Scrape();
        Delta(before, after, "omnibroker_messages_received_total", "qos=1").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_messages_received_bytes_total", "qos=1").Should().BeGreaterThanOrEqualTo(100);
        Delta(before, after, "omnibroker_messages_sent_total", "qos=2").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_messages_sent_bytes_total", "qos=2").Should().BeGreaterThanOrEqualTo(40);
        Delta(before, after, "omnibroker_messages_dropped_total", "reason=queue_full").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_authorization_decisions_total", "action=subscribe", "result=deny").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_policy_reloads_total", "result=success").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_ocsp_requests_total", "result=timeout").Should().BeGreaterThanOrEqualTo(1);
        Delta(before, after, "omnibroker_ocsp_request_duration_seconds_bucket", "le=5").Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public void RegisteredSources_FeedTheGauges()
    {
        var now = DateTimeOffset.UtcNow;
        var source = new FakeSource
        {
            Sessions = 1_000_003,
            PolicyVersion = 424242,
            Crls = [new CrlState("CN=Test CA \"metrics\"", now.AddHours(-2), now.AddHours(22))],
            Expiries = [now.AddDays(3), now.AddDays(45)],
        };

        Exposition e;
        using (BrokerMetrics.RegisterSource(source))
        {
            e = Scrape();
        }

        e.Value("omnibroker_sessions").Should().BeGreaterThanOrEqualTo(1_000_003);
        e.Find("omnibroker_policy_version").Select(s => s.Value).Should().Contain(424242);
        e.Value("omnibroker_crl_age_seconds", "issuer=CN=Test CA \"metrics\"").Should().BeInRange(7190, 7300);
        e.Value("omnibroker_crl_next_update_timestamp_seconds", "issuer=CN=Test CA \"metrics\"")
            .Should().BeApproximately(now.AddHours(22).ToUnixTimeMilliseconds() / 1000.0, 0.01);
        e.Value("omnibroker_client_certificates_expiring", "within_days=7").Should().BeGreaterThanOrEqualTo(1);
        e.Value("omnibroker_client_certificate_soonest_expiry_timestamp_seconds")
            .Should().BeLessThanOrEqualTo(now.AddDays(3).ToUnixTimeMilliseconds() / 1000.0 + 0.01);
    }

    [Fact]
    public void Gauges_AfterTheirSourceIsUnregistered_StopReportingItsValues()
    {
        var source = new FakeSource { Sessions = 5_000_017, Expiries = [DateTimeOffset.UtcNow.AddDays(-30_000)] };
        using (BrokerMetrics.RegisterSource(source))
        {
            Scrape().Value("omnibroker_sessions").Should().BeGreaterThanOrEqualTo(5_000_017);
        }

        var after = Scrape();
        after.Find("omnibroker_sessions").Should().NotContain(s => s.Value >= 5_000_017, "a gauge must not repeat the last value of a source that is gone");
        var longAgo = DateTimeOffset.UtcNow.AddDays(-29_000).ToUnixTimeSeconds();
        after.Find("omnibroker_client_certificate_soonest_expiry_timestamp_seconds").Should().NotContain(s => s.Value < longAgo);
    }

    [Fact]
    public void SummarizeExpiries_BucketsAreCumulativeAndSoonestIsTheMinimum()
    {
        var now = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var a = new FakeSource { Expiries = [now.AddDays(-1), now.AddHours(12), now.AddDays(5)] };
        var b = new FakeSource { Expiries = [now.AddDays(20), now.AddDays(60), now.AddDays(400)] };

        var summary = BrokerMetrics.SummarizeExpiries([a, b], now);

        summary.Count.Should().Be(6);
        // within_days: 0 (expired), 1, 7, 14, 30, 90
        summary.Buckets.Should().Equal(1, 2, 3, 3, 4, 5);
        summary.SoonestUtcTicks.Should().Be(now.AddDays(-1).UtcTicks);
    }

    [Fact]
    public void FullExposition_WithEverySeriesPopulated_PassesPromtool()
    {
        var now = DateTimeOffset.UtcNow;
        var source = new FakeSource
        {
            Sessions = 2,
            Subscriptions = 3,
            Retained = 4,
            PolicyVersion = 7,
            Crls = [new CrlState("CN=Root\\CA", now.AddMinutes(-5), now.AddDays(1))],
            Expiries = [now.AddDays(10)],
        };
        BrokerMetrics.ConnectionOpened(MqttProtocolVersion.V500);
        BrokerMetrics.HandshakeSucceeded(0.004);
        BrokerMetrics.RevocationCacheHit(BrokerMetrics.RevocationCaches.Crl);
        BrokerMetrics.RevocationCacheMiss();
        BrokerMetrics.ConnectionClosed(MqttProtocolVersion.V500);

        string text;
        using (BrokerMetrics.RegisterSource(source))
        {
            text = Encoding.UTF8.GetString(_host.Scrape()!);
        }

        var (exit, output) = Promtool.CheckMetrics(text);
        exit.Should().Be(0, "promtool check metrics reported:\n{0}\non:\n{1}", output, text);
        var e = Exposition.Parse(text);
        foreach (var name in new[]
                 {
                     "omnibroker_connections_total", "omnibroker_connections_active", "omnibroker_tls_handshakes_total",
                     "omnibroker_tls_handshake_duration_seconds_bucket", "omnibroker_authorization_decisions_total",
                     "omnibroker_messages_received_total", "omnibroker_messages_sent_total", "omnibroker_messages_received_bytes_total",
                     "omnibroker_messages_sent_bytes_total", "omnibroker_messages_dropped_total", "omnibroker_retained_messages",
                     "omnibroker_sessions", "omnibroker_subscriptions", "omnibroker_crl_age_seconds", "omnibroker_crl_next_update_timestamp_seconds",
                     "omnibroker_ocsp_requests_total", "omnibroker_revocation_cache_hits_total", "omnibroker_revocation_cache_misses_total",
                     "omnibroker_policy_reloads_total", "omnibroker_policy_version", "omnibroker_policy_last_reload_success",
                     "omnibroker_client_certificates", "omnibroker_client_certificates_expiring",
                     "omnibroker_client_certificate_soonest_expiry_timestamp_seconds",
                 })
        {
            e.Find(name).Should().NotBeEmpty("{0} must be exposed", name);
        }
    }

    private static double Delta(Exposition before, Exposition after, string name, params string[] labels) =>
        after.Value(name, labels) - before.ValueOrZero(name, labels);

    private sealed class FakeSource : IBrokerStateSource, IPolicyStateSource, ICrlStateSource, ICertificateExpirySource
    {
        public long Sessions { get; init; }

        public long Subscriptions { get; init; }

        public long Retained { get; init; }

        public long PolicyVersion { get; init; }

        public CrlState[] Crls { get; init; } = [];

        public DateTimeOffset[] Expiries { get; init; } = [];

        long IBrokerStateSource.SessionCount => Sessions;

        long IBrokerStateSource.SubscriptionCount => Subscriptions;

        long IBrokerStateSource.RetainedMessageCount => Retained;

        bool IPolicyStateSource.IsPolicyLoaded => true;

        long IPolicyStateSource.PolicyVersion => PolicyVersion;

        public IEnumerable<CrlState> GetCrlStates() => Crls;

        public IEnumerable<DateTimeOffset> GetConnectedCertificateExpiries() => Expiries;
    }
}

[CollectionDefinition(Name)]
public sealed class MetricsCollection
{
    public const string Name = "OmniBroker metrics";
}
