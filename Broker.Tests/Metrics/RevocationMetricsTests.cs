using FluentAssertions;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

[Collection(MetricsCollection.Name)]
public sealed class RevocationMetricsTests
{
    [Fact]
    public void OcspResultLabels_AreDistinctAndFromTheDocumentedSet()
    {
        var labels = Enum.GetValues<OcspRequestResult>().Select(RevocationInstruments.Label).ToList();

        labels.Should().OnlyHaveUniqueItems();
        labels.Should().BeSubsetOf(["good", "revoked", "unknown", "timeout", "network_error", "http_error", "invalid_response", "error"]);
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
