using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>Issue 9 defect 4: a CRL file from an untrusted issuer must not replace the intermediate's good CRL.</summary>
public sealed class CrlFileTrustTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("omni-crl-trust").FullName;
    private readonly RevocationTestPki _pki = RevocationTestPki.Create("Trust");

    public void Dispose()
    {
        _pki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData(RevocationFailurePolicy.SoftFail)]
    [InlineData(RevocationFailurePolicy.HardFail)]
    public async Task CrlFile_ReplacedBySelfMadeCaWithReorderedName_RejectedAndLastGoodKept(RevocationFailurePolicy policy)
    {
        X509Certificate2 revoked = _pki.IssueLeaf("revoked-device");
        X509Certificate2 good = _pki.IssueLeaf("good-device");
        string path = Path.Combine(_dir, "intermediate.crl");
        await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [revoked], 1));
        await File.WriteAllBytesAsync(Path.Combine(_dir, "root.crl"), _pki.BuildCrl(root: true, [], 1));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.FailurePolicy = policy;
            o.CrlFiles.Add(path);
            o.CrlFiles.Add(Path.Combine(_dir, "root.crl"));
        });
        harness.Runtime.Crls.StartWatching();
        (await harness.CheckAsync(_pki.Chain(revoked))).Status.Should().Be(RevocationStatus.Revoked, harness.LogText);

        // The intermediate's name with its RDNs in another order, on a CA of the attacker's own; its CRL lists nobody
        // and has a higher number.
        using ECDsa forgerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X500DistinguishedName reordered = new("O=OmniBroker Tests, CN=Trust Intermediate CA");
        reordered.RawData.Should().NotEqual(_pki.Intermediate.SubjectName.RawData);
        CertificateRequest request = new(reordered, forgerKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using X509Certificate2 forgerCa = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        DateTimeOffset now = DateTimeOffset.UtcNow.AddMinutes(-1);
        byte[] forged = new CertificateRevocationListBuilder().Build(reordered, X509SignatureGenerator.CreateForECDsa(forgerKey),
            new BigInteger(99), now.AddDays(1), HashAlgorithmName.SHA256, X509AuthorityKeyIdentifierExtension.CreateFromCertificate(forgerCa, true, false), now);
        await File.WriteAllBytesAsync(path, forged);
        harness.Runtime.Crls.ReloadFiles(force: true);

        RevocationCheckResult revokedAfter = await harness.CheckAsync(_pki.Chain(revoked));
        RevocationCheckResult goodAfter = await harness.CheckAsync(_pki.Chain(good));

        revokedAfter.Status.Should().Be(RevocationStatus.Revoked, "the last good CRL of the intermediate stays in use");
        revokedAfter.Admit.Should().BeFalse();
        goodAfter.Status.Should().Be(RevocationStatus.Good, harness.LogText);
        goodAfter.Admit.Should().BeTrue("the intermediate's devices are not all refused");
        harness.Logs.WithEventId(4006).Should().ContainSingle(e => e.Message.Contains("O=OmniBroker Tests, CN=Trust Intermediate CA", StringComparison.Ordinal),
            "the forged CRL waits for a CA that never shows up");
        harness.Runtime.Crls.Snapshot().Should().Contain(s => s.Source == path && s.Number == BigInteger.One);
    }

    [Fact]
    public async Task CrlFile_SameDerNameSignedByOtherKey_RejectedOnFirstUseWithNothingHeld()
    {
        X509Certificate2 device = _pki.IssueLeaf("device");
        string path = Path.Combine(_dir, "intermediate.crl");
        using ECDsa forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [], 5, signWith: forger));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.FailurePolicy = RevocationFailurePolicy.HardFail;
            o.FetchDistributionPoints = false;
            o.CrlFiles.Add(path);
        });
        harness.Runtime.Crls.StartWatching();

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(device));

        result.Status.Should().Be(RevocationStatus.Unknown, "a CRL the intermediate did not sign says nothing");
        result.Admit.Should().BeFalse();
        harness.Logs.WithEventId(4002).Should().ContainSingle().Which.Message.Should().Contain("signature does not verify");
    }
}
