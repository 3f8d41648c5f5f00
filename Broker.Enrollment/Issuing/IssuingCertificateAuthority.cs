using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Enrollment.Issuing;

/// <summary>
/// The CA that signs enrolled and renewed device certificates, with its profile: validity, keyUsage
/// digitalSignature (+ keyEncipherment for RSA keys), clientAuth EKU, CRL distribution point and OCSP URL. The
/// development PKI's intermediate by default; in production a configured CA certificate and key
/// (<see cref="Load"/>). Thread-safe: signing keys are used concurrently.
/// </summary>
public sealed class IssuingCertificateAuthority
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private readonly AsymmetricAlgorithm _key;
    private readonly X509SignatureGenerator _generator;
    private readonly X509Extension _authorityKeyIdentifier;
    private readonly X509Extension? _crlDistributionPoint;
    private readonly X509Extension? _authorityInformationAccess;
    private readonly TimeProvider _time;

    private IssuingCertificateAuthority(X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<X509Certificate2> chain, int validityDays, string? crlUrl, string? ocspUrl, TimeProvider time)
    {
        Certificate = certificate;
        _key = key;
        Chain = chain;
        ValidityDays = validityDays;
        _time = time;
        _generator = key switch
        {
            ECDsa ec => X509SignatureGenerator.CreateForECDsa(ec),
            RSA rsa => X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1),
            _ => throw new InvalidDataException("the CA key must be EC or RSA"),
        };
        _authorityKeyIdentifier = X509AuthorityKeyIdentifierExtension.CreateFromCertificate(certificate, true, false);
        _crlDistributionPoint = crlUrl is null ? null : CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlUrl]);
        _authorityInformationAccess = ocspUrl is null ? null : new X509AuthorityInformationAccessExtension([ocspUrl], null);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate and its issuers up to the root: what /cacerts returns.</summary>
    public IReadOnlyList<X509Certificate2> Chain { get; }

    public int ValidityDays { get; }

    /// <summary>The development PKI's intermediate, with its CRL and OCSP URLs unless overridden.</summary>
    public static IssuingCertificateAuthority FromDevelopmentPki(DevelopmentPki pki, EstOptions options, TimeProvider? time = null) =>
        new(pki.IntermediateCertificate, pki.IntermediateKey, [pki.IntermediateCertificate, pki.RootCertificate], options.ValidityDays,
            options.CrlUrl ?? pki.IntermediateCrlUrl, options.OcspUrl ?? pki.OcspUrl, time ?? TimeProvider.System);

    /// <summary>A configured CA: certificate PEM (CA first, then its issuers), key PEM (PKCS#8, SEC1 or PKCS#1;
    /// "ENCRYPTED PRIVATE KEY" with the passphrase).</summary>
    /// <exception cref="InvalidDataException">unreadable, mismatched, not a CA, or a wrong passphrase (message says which).</exception>
    public static IssuingCertificateAuthority Load(string certificatePath, string keyPath, string? passphrase, EstOptions options, TimeProvider? time = null)
    {
        var certificates = PemCertificates.LoadAll(certificatePath);
        var certificate = certificates[0];
        if (certificate.Extensions["2.5.29.19"] is not X509BasicConstraintsExtension { CertificateAuthority: true })
        {
            throw new InvalidDataException($"{certificatePath}: {certificate.Subject} is not a CA certificate (basicConstraints cA=TRUE missing)");
        }
        var pem = File.ReadAllText(keyPath);
        var encrypted = pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal);
        if (encrypted && passphrase is null)
        {
            throw new InvalidDataException($"{keyPath}: the key is encrypted; set {EstOptions.Section}:CaKeyPassphraseEnvironmentVariable or {EstOptions.Section}:CaKeyPassphraseFile");
        }
        AsymmetricAlgorithm key = certificate.GetKeyAlgorithm() == "1.2.840.10045.2.1" ? ECDsa.Create() : RSA.Create();
        try
        {
            if (encrypted)
            {
                key.ImportFromEncryptedPem(pem, passphrase);
            }
            else
            {
                key.ImportFromPem(pem);
            }
            // Throws when the key does not belong to the certificate.
            using var check = key is ECDsa ec ? certificate.CopyWithPrivateKey(ec) : certificate.CopyWithPrivateKey((RSA)key);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new InvalidDataException($"{keyPath}: cannot use the CA key ({(encrypted ? "wrong passphrase? " : "")}{ex.Message})", ex);
        }
        return new IssuingCertificateAuthority(certificate, key, certificates, options.ValidityDays, options.CrlUrl, options.OcspUrl, time ?? TimeProvider.System);
    }

    /// <summary>Signs a client certificate for <paramref name="publicKey"/>. <paramref name="subjectAlternativeName"/>
    /// and <paramref name="deviceType"/> are copied as given (renewal copies them from the old certificate).</summary>
    public X509Certificate2 Issue(X500DistinguishedName subject, PublicKey publicKey, X509Extension? subjectAlternativeName, X509Extension? deviceType)
    {
        var request = new CertificateRequest(subject, publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var usage = publicKey.Oid.Value == "1.2.840.113549.1.1.1" ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature;
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ClientAuthOid)], false));
        if (subjectAlternativeName is not null)
        {
            request.CertificateExtensions.Add(subjectAlternativeName);
        }
        if (deviceType is not null)
        {
            request.CertificateExtensions.Add(deviceType);
        }
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, false));
        request.CertificateExtensions.Add(_authorityKeyIdentifier);
        if (_crlDistributionPoint is not null)
        {
            request.CertificateExtensions.Add(_crlDistributionPoint);
        }
        if (_authorityInformationAccess is not null)
        {
            request.CertificateExtensions.Add(_authorityInformationAccess);
        }

        var now = _time.GetUtcNow();
        var notAfter = now.AddDays(ValidityDays);
        var caNotAfter = new DateTimeOffset(Certificate.NotAfter.ToUniversalTime());
        if (notAfter > caNotAfter)
        {
            notAfter = caNotAfter;
        }
        Span<byte> serial = stackalloc byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40); // positive, fixed length (RFC 5280 §4.1.2.2)
        using var certificate = request.Create(Certificate.SubjectName, _generator, now.AddMinutes(-5), notAfter, serial);
        return X509CertificateLoader.LoadCertificate(certificate.RawData);
    }
}
