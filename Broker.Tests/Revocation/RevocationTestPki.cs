using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OmniBroker.Tests.Revocation;

/// <summary>
/// Root → intermediate → leaves (ECDSA P-256), with CRL distribution points and OCSP URLs pointing at the test's
/// own loopback servers; CRLs built with CertificateRevocationListBuilder; files for `openssl ocsp`.
/// </summary>
internal sealed class RevocationTestPki : IDisposable
{
    private const string OcspSigningOid = "1.3.6.1.5.5.7.3.9";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private RevocationTestPki(string name, string? rootCrlUrl, string? intermediateOcspUrl)
    {
        RootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest rootRequest = new($"CN={name} Root CA, O=OmniBroker Tests", RootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using (X509Certificate2 root = rootRequest.CreateSelfSigned(now.AddDays(-1), now.AddYears(5)))
        {
            Root = X509CertificateLoader.LoadCertificate(root.RawData);
        }

        IntermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest intermediateRequest = new($"CN={name} Intermediate CA, O=OmniBroker Tests", IntermediateKey, HashAlgorithmName.SHA256);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, true, false));
        if (rootCrlUrl is not null)
        {
            intermediateRequest.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([rootCrlUrl]));
        }

        if (intermediateOcspUrl is not null)
        {
            intermediateRequest.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([intermediateOcspUrl], null));
        }

        Intermediate = Sign(intermediateRequest, Root, RootKey, now.AddDays(-1), now.AddYears(4));
    }

    public X509Certificate2 Root { get; }

    public ECDsa RootKey { get; }

    public X509Certificate2 Intermediate { get; }

    public ECDsa IntermediateKey { get; }

    /// <param name="rootCrlUrl">CRL distribution point of the intermediate (the root's CRL).</param>
    /// <param name="intermediateOcspUrl">AIA OCSP of the intermediate (usually none).</param>
    public static RevocationTestPki Create(string name = "Test", string? rootCrlUrl = null, string? intermediateOcspUrl = null) =>
        new(name, rootCrlUrl, intermediateOcspUrl);

    /// <summary>A client certificate issued by the intermediate.</summary>
    public X509Certificate2 IssueLeaf(string commonName, string? crlUrl = null, string? ocspUrl = null, DateTimeOffset? notAfter = null)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest request = new($"CN={commonName}, O=OmniBroker Tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ClientAuthOid)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Intermediate, true, false));
        if (crlUrl is not null)
        {
            request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlUrl]));
        }

        if (ocspUrl is not null)
        {
            request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([ocspUrl], null));
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        return Sign(request, Intermediate, IntermediateKey, now.AddHours(-1), notAfter ?? now.AddDays(30));
    }

    /// <summary>An OCSP responder certificate (with its key) issued by <paramref name="issuer"/> (default: the intermediate).</summary>
    public (X509Certificate2 Certificate, ECDsa Key) IssueResponder(string commonName, bool ocspSigning, X509Certificate2? issuer = null, ECDsa? issuerKey = null)
    {
        ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest request = new($"CN={commonName}, O=OmniBroker Tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ocspSigning ? OcspSigningOid : ClientAuthOid)], false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return (Sign(request, issuer ?? Intermediate, issuerKey ?? IntermediateKey, now.AddHours(-1), now.AddDays(30)), key);
    }

    public IReadOnlyList<X509Certificate2> Chain(X509Certificate2 leaf) => [leaf, Intermediate, Root];

    /// <summary>CRL of the intermediate (<paramref name="root"/> false) or root CA listing <paramref name="revoked"/>.</summary>
    public byte[] BuildCrl(bool root, IEnumerable<X509Certificate2> revoked, BigInteger number, DateTimeOffset? thisUpdate = null,
        DateTimeOffset? nextUpdate = null, ECDsa? signWith = null)
    {
        CertificateRevocationListBuilder builder = new();
        DateTimeOffset now = thisUpdate ?? DateTimeOffset.UtcNow.AddMinutes(-1);
        foreach (X509Certificate2 cert in revoked)
        {
            builder.AddEntry(cert, now, X509RevocationReason.KeyCompromise);
        }

        X509Certificate2 issuer = root ? Root : Intermediate;
        ECDsa key = signWith ?? (root ? RootKey : IntermediateKey);
        return builder.Build(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(key), number, nextUpdate ?? now.AddDays(1),
            HashAlgorithmName.SHA256, X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false), now);
    }

    /// <summary>An `openssl ca`-style index: V for good, R for revoked (serial as OpenSSL prints it).</summary>
    public static string OpensslIndex(IEnumerable<X509Certificate2> good, IEnumerable<X509Certificate2> revoked)
    {
        StringBuilder sb = new();
        foreach (X509Certificate2 cert in good)
        {
            sb.Append(CultureInfo.InvariantCulture, $"V\t{OpensslTime(cert.NotAfter)}\t\t{cert.SerialNumber}\tunknown\t/CN={cert.GetNameInfo(X509NameType.SimpleName, false)}\n");
        }

        foreach (X509Certificate2 cert in revoked)
        {
            sb.Append(CultureInfo.InvariantCulture, $"R\t{OpensslTime(cert.NotAfter)}\t{OpensslTime(DateTime.UtcNow.AddMinutes(-1))},keyCompromise\t{cert.SerialNumber}\tunknown\t/CN={cert.GetNameInfo(X509NameType.SimpleName, false)}\n");
        }

        return sb.ToString();
    }

    public static void WritePem(string path, X509Certificate2 certificate) =>
        File.WriteAllText(path, PemEncoding.WriteString("CERTIFICATE", certificate.RawData) + "\n");

    public static void WriteKey(string path, ECDsa key) => File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n");

    public void Dispose()
    {
        RootKey.Dispose();
        IntermediateKey.Dispose();
    }

    private static string OpensslTime(DateTime time) => time.ToUniversalTime().ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + "Z";

    private static X509Certificate2 Sign(CertificateRequest request, X509Certificate2 issuer, ECDsa issuerKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] = (byte)(0x40 | (serial[0] & 0x3F));
        using X509Certificate2 cert = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), notBefore, notAfter, serial);
        return X509CertificateLoader.LoadCertificate(cert.RawData);
    }
}
