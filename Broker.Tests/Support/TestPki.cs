using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Tests.Support;

/// <summary>
/// Real certificates for TLS tests: a trusted root → intermediate → leaves, an unrelated "other" CA, and leaf
/// variants (good, other CA, expired, not yet valid, no clientAuth EKU, no digitalSignature). ECDSA P-256.
/// <see cref="WriteFiles"/> writes the PEM files the host configuration points at.
/// </summary>
public sealed class TestPki : IDisposable
{
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    private readonly ECDsa _rootKey;
    private readonly ECDsa _intermediateKey;
    private readonly ECDsa _otherRootKey;
    private readonly ECDsa _otherIntermediateKey;

    private TestPki()
    {
        var now = DateTimeOffset.UtcNow;
        (Root, _rootKey) = CreateCa("Test Root CA", null, null, now.AddDays(-30), now.AddYears(5), pathLength: null);
        (Intermediate, _intermediateKey) = CreateCa("Test Intermediate CA", Root, _rootKey, now.AddDays(-30), now.AddYears(4), pathLength: 0);
        (OtherRoot, _otherRootKey) = CreateCa("Other Root CA", null, null, now.AddDays(-30), now.AddYears(5), pathLength: null);
        (OtherIntermediate, _otherIntermediateKey) = CreateCa("Other Intermediate CA", OtherRoot, _otherRootKey, now.AddDays(-30), now.AddYears(4), pathLength: 0);
        Server = IssueServer();
        Good = IssueLeaf("good-device");
        OtherCa = IssueLeaf("other-ca-device", otherCa: true);
        Expired = IssueLeaf("expired-device", notBefore: now.AddDays(-30), notAfter: now.AddDays(-1));
        NotYetValid = IssueLeaf("future-device", notBefore: now.AddDays(1), notAfter: now.AddDays(30));
        NoClientAuth = IssueLeaf("server-only-device", eku: ServerAuth);
        NoDigitalSignature = IssueLeaf("keyagreement-device", keyUsage: X509KeyUsageFlags.KeyAgreement);
    }

    public X509Certificate2 Root { get; }
    public X509Certificate2 Intermediate { get; }
    public X509Certificate2 OtherRoot { get; }
    public X509Certificate2 OtherIntermediate { get; }

    /// <summary>Server certificate for localhost/127.0.0.1 with its key, issued by <see cref="Intermediate"/>.</summary>
    public X509Certificate2 Server { get; }

    /// <summary>Leaves (with private keys) issued by <see cref="Intermediate"/> unless stated otherwise.</summary>
    public X509Certificate2 Good { get; }
    public X509Certificate2 OtherCa { get; }
    public X509Certificate2 Expired { get; }
    public X509Certificate2 NotYetValid { get; }
    public X509Certificate2 NoClientAuth { get; }
    public X509Certificate2 NoDigitalSignature { get; }

    public static TestPki Create() => new();

    /// <summary>The intermediate a leaf must be presented with.</summary>
    public X509Certificate2 IssuerOf(X509Certificate2 leaf) => leaf.Issuer == OtherIntermediate.Subject ? OtherIntermediate : Intermediate;

    public X509Certificate2 IssueLeaf(string commonName, bool otherCa = false, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null,
        string eku = ClientAuth, X509KeyUsageFlags keyUsage = X509KeyUsageFlags.DigitalSignature)
    {
        var now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}, OU=tests, O=Acme, C=DE", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(keyUsage, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var (issuer, issuerKey) = otherCa ? (OtherIntermediate, _otherIntermediateKey) : (Intermediate, _intermediateKey);
        // Without digitalSignature .NET sees the key as ECDH, not ECDSA: such a leaf is returned without its key.
        var withKey = (keyUsage & X509KeyUsageFlags.DigitalSignature) != 0 ? key : null;
        return Sign(request, issuer, issuerKey, notBefore ?? now.AddDays(-1), notAfter ?? now.AddDays(60), withKey);
    }

    /// <summary>Writes root.crt, intermediate.crt, server.crt (server + intermediate), server.key, other-root.crt.</summary>
    public TestPkiFiles WriteFiles(string directory)
    {
        Directory.CreateDirectory(directory);
        var files = new TestPkiFiles(
            Path.Combine(directory, "root.crt"),
            Path.Combine(directory, "intermediate.crt"),
            Path.Combine(directory, "server.crt"),
            Path.Combine(directory, "server.key"),
            Path.Combine(directory, "other-root.crt"));
        File.WriteAllText(files.Root, Root.ExportCertificatePem() + "\n");
        File.WriteAllText(files.Intermediate, Intermediate.ExportCertificatePem() + "\n");
        File.WriteAllText(files.ServerCertificate, Server.ExportCertificatePem() + "\n" + Intermediate.ExportCertificatePem() + "\n");
        File.WriteAllText(files.ServerKey, Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n");
        File.WriteAllText(files.OtherRoot, OtherRoot.ExportCertificatePem() + "\n");
        return files;
    }

    public void Dispose()
    {
        _rootKey.Dispose();
        _intermediateKey.Dispose();
        _otherRootKey.Dispose();
        _otherIntermediateKey.Dispose();
    }

    private X509Certificate2 IssueServer()
    {
        var now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost, O=Acme Test", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuth)], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return Sign(request, Intermediate, _intermediateKey, now.AddDays(-1), now.AddYears(1), key);
    }

    private static (X509Certificate2, ECDsa) CreateCa(string name, X509Certificate2? issuer, ECDsa? issuerKey, DateTimeOffset notBefore, DateTimeOffset notAfter, int? pathLength)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, O=Acme Test", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, pathLength.HasValue, pathLength ?? 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (issuer is null)
        {
            using var self = request.CreateSelfSigned(notBefore, notAfter);
            return (X509CertificateLoader.LoadCertificate(self.RawData), key);
        }
        return (Sign(request, issuer, issuerKey!, notBefore, notAfter, key: null), key);
    }

    private static X509Certificate2 Sign(CertificateRequest request, X509Certificate2 issuer, ECDsa issuerKey, DateTimeOffset notBefore, DateTimeOffset notAfter, ECDsa? key)
    {
        var serial = new byte[12];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        using var certificate = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), notBefore, notAfter, serial);
        var copy = X509CertificateLoader.LoadCertificate(certificate.RawData);
        if (key is null)
        {
            return copy;
        }
        using (copy)
        {
            return copy.CopyWithPrivateKey(key);
        }
    }
}

public sealed record TestPkiFiles(string Root, string Intermediate, string ServerCertificate, string ServerKey, string OtherRoot);
