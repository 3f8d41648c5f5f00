using System.Text;
using FluentAssertions;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host.Metrics;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

[Collection(MetricsCollection.Name)]
public sealed class RevocationMetricsTests
{
    [Fact]
    public void OcspResultLabels_AreDistinctAndFromTheExportedSet()
    {
        var labels = Enum.GetValues<OcspRequestResult>().Select(MetricsRevocationObserver.Label).ToList();

        labels.Should().OnlyHaveUniqueItems();
        labels.Should().BeSubsetOf(["good", "revoked", "unknown", "timeout", "network_error", "http_error", "invalid_response", "error"]);
    }

    [Fact]
    public void CrlStateSource_TwoSourcesOfOneIssuer_ReportsTheFreshestAndSkipsNeverLoaded()
    {
        var now = DateTimeOffset.UtcNow;
        var metrics = new RevocationMetrics
        {
            CrlStatusProvider = () =>
            [
                new CrlSourceStatus("file:/a.crl", "CN=CA", now.AddHours(-5), now.AddHours(1), 1, 0, now, null, null),
                new CrlSourceStatus("http://ca/b.crl", "CN=CA", now.AddHours(-1), now.AddHours(23), 2, 0, now, null, null),
                new CrlSourceStatus("http://other/c.crl", "CN=Other", null, null, null, 0, null, now, "unreachable"),
            ],
        };

        var states = new RevocationCrlStateSource(metrics).GetCrlStates().ToList();

        states.Should().ContainSingle().Which.Should().Be(new CrlState("CN=CA", now.AddHours(-1), now.AddHours(23)));
    }

    [Fact]
    public void Observer_RecordsOcspAndCacheLookups()
    {
        using var host = new MetricsHost(new MetricsOptions(), []);
        var before = Exposition.Parse(Encoding.UTF8.GetString(host.Scrape()!));
        var observer = new MetricsRevocationObserver();

        observer.OcspRequestCompleted(OcspRequestResult.HttpError, TimeSpan.FromMilliseconds(30));
        observer.CacheLookup("crl", hit: true);
        observer.CacheLookup("ocsp", hit: false);
        observer.CrlRefreshed("file:/x.crl", success: false);

        var after = Exposition.Parse(Encoding.UTF8.GetString(host.Scrape()!));
        double Delta(string name, params string[] labels) => after.Value(name, labels) - before.Value(name, labels);
        Delta("omnibroker_ocsp_requests_total", "result=http_error").Should().BeGreaterThanOrEqualTo(1);
        Delta("omnibroker_revocation_cache_hits_total", "cache=crl").Should().BeGreaterThanOrEqualTo(1);
        Delta("omnibroker_revocation_cache_misses_total", "cache=ocsp").Should().BeGreaterThanOrEqualTo(1);
        Delta("omnibroker_crl_refreshes_total", "result=failure").Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task Host_WithDevelopmentPki_ExportsAgeAndNextUpdateOfItsCrls()
    {
        // No TLS files: the host creates the development PKI and publishes and loads its CRLs.
        await using var broker = await TestBroker.StartAsync();
        using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };

        var e = Exposition.Parse(await http.GetStringAsync("/metrics"));

        var ages = e.Find("omnibroker_crl_age_seconds").Where(s => s.Labels["issuer"].Contains("OmniBroker Dev", StringComparison.Ordinal)).ToList();
        ages.Should().NotBeEmpty(e.Text);
        ages.Should().OnlyContain(s => s.Value >= 0 && s.Value < 7 * 86400);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        e.Find("omnibroker_crl_next_update_timestamp_seconds").Where(s => s.Labels["issuer"].Contains("OmniBroker Dev", StringComparison.Ordinal))
            .Should().NotBeEmpty().And.OnlyContain(s => s.Value > now);
    }
}
