using FluentAssertions;
using Microsoft.Extensions.Configuration;
using OmniBroker.Auth.Revocation;
using Xunit;

namespace OmniBroker.Tests.Revocation;

public sealed class RevocationOptionsTests
{
    private static IConfigurationSection Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build().GetSection("Revocation");

    [Fact]
    public void Load_KebabCaseValuesAndDurations_Parsed()
    {
        RevocationOptions options = RevocationOptionsLoader.Load(Section(new()
        {
            ["Revocation:Mode"] = "ocsp-then-crl",
            ["Revocation:FailurePolicy"] = "soft-fail",
            ["Revocation:OcspUnknown"] = "refuse",
            ["Revocation:StaleCrlPolicy"] = "fail-open",
            ["Revocation:RequestMethod"] = "get",
            ["Revocation:HashAlgorithm"] = "sha1",
            ["Revocation:OcspTimeout"] = "750ms",
            ["Revocation:MonitorInterval"] = "00:00:15",
            ["Revocation:MaxStatusAge"] = "2m",
            ["Revocation:StaleCrlGrace"] = "2h",
            ["Revocation:UseNonce"] = "false",
            ["Revocation:CrlFiles:0"] = "/etc/pki/a.crl",
            ["Revocation:CrlFiles:1"] = "/etc/pki/b.crl",
            ["Revocation:PerAnchor:CN=Legacy Root:Mode"] = "none",
            ["Revocation:PerAnchor:ABCDEF01:Mode"] = "crl",
            ["Revocation:PerAnchor:ABCDEF01:OcspResponder"] = "http://ocsp.example/",
        }));

        options.Mode.Should().Be(RevocationMode.OcspThenCrl);
        options.FailurePolicy.Should().Be(RevocationFailurePolicy.SoftFail);
        options.OcspUnknown.Should().Be(OcspUnknownPolicy.Refuse);
        options.StaleCrlPolicy.Should().Be(StaleCrlPolicy.FailOpen);
        options.RequestMethod.Should().Be(OcspRequestMethod.Get);
        options.HashAlgorithm.Should().Be(OcspHashAlgorithm.Sha1);
        options.OcspTimeout.Should().Be(TimeSpan.FromMilliseconds(750));
        options.MonitorInterval.Should().Be(TimeSpan.FromSeconds(15));
        options.MaxStatusAge.Should().Be(TimeSpan.FromMinutes(2));
        options.StaleCrlGrace.Should().Be(TimeSpan.FromHours(2));
        options.UseNonce.Should().BeFalse();
        options.CrlFiles.Should().Equal("/etc/pki/a.crl", "/etc/pki/b.crl");
        options.PerAnchor["CN=Legacy Root"].Mode.Should().Be(RevocationMode.None);
        options.PerAnchor["abcdef01"].OcspResponder.Should().Be(new Uri("http://ocsp.example/"));
    }

    [Fact]
    public void Load_BadValues_EveryErrorReportedWithItsKey()
    {
        Action load = () => RevocationOptionsLoader.Load(Section(new()
        {
            ["Revocation:Mode"] = "ocsp-or-whatever",
            ["Revocation:OcspTimeout"] = "soon",
            ["Revocation:UseNonce"] = "maybe",
            ["Revocation:Colour"] = "blue",
            ["Revocation:PerAnchor:X:OcspResponder"] = "ftp://nope",
        }));

        load.Should().Throw<RevocationConfigurationException>().Which.Errors.Should().HaveCount(5)
            .And.Contain(e => e.StartsWith("Revocation:Mode: 'ocsp-or-whatever' is not one of none, ocsp, crl, ocsp-then-crl, crl-then-ocsp", StringComparison.Ordinal))
            .And.Contain(e => e.StartsWith("Revocation:OcspTimeout:", StringComparison.Ordinal))
            .And.Contain(e => e.StartsWith("Revocation:UseNonce:", StringComparison.Ordinal))
            .And.Contain(e => e.StartsWith("Revocation:Colour: unknown key", StringComparison.Ordinal))
            .And.Contain(e => e.StartsWith("Revocation:PerAnchor:X:OcspResponder:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PerAnchor_ModeNoneByThumbprint_NotCheckedWhileOthersAre()
    {
        using RevocationTestPki legacy = RevocationTestPki.Create("Legacy");
        using RevocationTestPki modern = RevocationTestPki.Create("Modern");
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.PerAnchor[string.Join(":", Enumerable.Range(0, 20).Select(i => legacy.Root.Thumbprint.Substring(i * 2, 2)))] =
                new AnchorRevocationOptions { Mode = RevocationMode.None };
        });

        OmniBroker.Auth.RevocationCheckResult off = await harness.CheckAsync(legacy.Chain(legacy.IssueLeaf("old")));
        OmniBroker.Auth.RevocationCheckResult on = await harness.CheckAsync(modern.Chain(modern.IssueLeaf("new")));

        off.Status.Should().Be(OmniBroker.Auth.RevocationStatus.NotChecked);
        off.Admit.Should().BeTrue();
        on.Status.Should().Be(OmniBroker.Auth.RevocationStatus.Unknown, "a client certificate without any revocation source is unknown");
        on.Admit.Should().BeFalse();
    }
}
