using System.Formats.Asn1;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Tests.Policy;

/// <summary>
/// Test certificates (ECDSA P-256, built with CertificateRequest) with exactly the fields the policy reads. The
/// subject is encoded by hand so tests can use what X500DistinguishedNameBuilder refuses (empty values, several
/// OUs, values with '/', '+', '#').
/// </summary>
internal static class PolicyTestCerts
{
    public const string DeviceTypeOid = "1.3.6.1.4.1.59999.1.1";

    private static readonly Lazy<X509Certificate2> s_ca = new(CreateCa);

    /// <summary>The issuing CA of every test device: CN=Acme Device CA, OU=pki, O=Acme, C=DE, ST=Bavaria, L=munich.</summary>
    public static X509Certificate2 Ca => s_ca.Value;

    // The development fleet (same fields as the host's development PKI issues).
    public static X509Certificate2 Sensor001 { get; } = Device("sensor-001", "sensors", "berlin", "temperature-sensor");

    public static X509Certificate2 Sensor002 { get; } = Device("sensor-002", "sensors", "munich", "temperature-sensor");

    public static X509Certificate2 GwBerlin { get; } = Device("gw-berlin", "gateways", "berlin", "gateway");

    public static X509Certificate2 BackendTelemetry { get; } =
        Device("backend-telemetry", "backend", null, "service", "spiffe://acme/backend/telemetry");

    public static X509Certificate2 Legacy001 { get; } = Device("legacy-001", "sensors", null, "legacy-thermostat");

    /// <summary>CN=&lt;cn&gt;, OU, O=Acme, C=DE, L, deviceType; SAN URI urn:device:&lt;cn&gt; plus <paramref name="extraUris"/>.</summary>
    public static X509Certificate2 Device(string cn, string ou, string? locality, string deviceType, params string[] extraUris)
    {
        var spec = new Spec
        {
            Subject = [("2.5.4.6", "DE"), ("2.5.4.10", "Acme"), ("2.5.4.11", ou), ("2.5.4.3", cn)],
            Uris = [$"urn:device:{cn}", .. extraUris],
            Extensions = [(DeviceTypeOid, Utf8String(deviceType))],
        };
        if (locality is not null)
        {
            spec = spec with { Subject = [.. spec.Subject, ("2.5.4.7", locality)] };
        }

        return Create(spec);
    }

    /// <summary>What goes into a test certificate. Subject entries are (OID, value), one RDN each, in order.</summary>
    public sealed record Spec
    {
        public (string Oid, string Value)[] Subject { get; init; } = [];

        public string[] Dns { get; init; } = [];

        public string[] Uris { get; init; } = [];

        public string[] Emails { get; init; } = [];

        public IPAddress[] Ips { get; init; } = [];

        public (string Oid, byte[] Der)[] Extensions { get; init; } = [];

        public byte[]? Serial { get; init; }

        /// <summary>Self-signed when false (issuer = subject).</summary>
        public bool SignedByCa { get; init; } = true;
    }

    public static X509Certificate2 Create(Spec spec)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Name(spec.Subject), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        if (spec.Dns.Length + spec.Uris.Length + spec.Emails.Length + spec.Ips.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var dns in spec.Dns)
            {
                san.AddDnsName(dns);
            }

            foreach (var uri in spec.Uris)
            {
                san.AddUri(new Uri(uri));
            }

            foreach (var email in spec.Emails)
            {
                san.AddEmailAddress(email);
            }

            foreach (var ip in spec.Ips)
            {
                san.AddIpAddress(ip);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        foreach (var (oid, der) in spec.Extensions)
        {
            request.CertificateExtensions.Add(new X509Extension(oid, der, critical: false));
        }

        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = notBefore.AddDays(30);
        var serial = spec.Serial ?? RandomNumberGenerator.GetBytes(12);
        if (!spec.SignedByCa)
        {
            var generator = X509SignatureGenerator.CreateForECDsa(key);
            using var self = request.Create(request.SubjectName, generator, notBefore, notAfter, serial);
            return X509CertificateLoader.LoadCertificate(self.RawData);
        }

        using var issued = request.Create(Ca, notBefore, notAfter, serial);
        return X509CertificateLoader.LoadCertificate(issued.RawData);
    }

    /// <summary>DER UTF8String, the encoding of the device-type extension value.</summary>
    public static byte[] Utf8String(string value)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteCharacterString(UniversalTagNumber.UTF8String, value);
        return writer.Encode();
    }

    public static byte[] DerInteger(long value)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteInteger(value);
        return writer.Encode();
    }

    /// <summary>Name ::= SEQUENCE OF RDN, one AttributeTypeAndValue per RDN, UTF8String values.</summary>
    public static X500DistinguishedName Name(IEnumerable<(string Oid, string Value)> entries)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var (oid, value) in entries)
            {
                using (writer.PushSetOf())
                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(oid);
                    writer.WriteCharacterString(oid == "2.5.4.6" ? UniversalTagNumber.PrintableString : UniversalTagNumber.UTF8String, value);
                }
            }
        }

        return new X500DistinguishedName(writer.Encode());
    }

    /// <summary>Writes <paramref name="certificate"/> as PEM into a temporary file and returns its path.</summary>
    public static string WritePem(X509Certificate2 certificate, string directory, [CallerMemberName] string name = "cert")
    {
        var path = Path.Combine(directory, name + ".pem");
        File.WriteAllText(path, certificate.ExportCertificatePem());
        return path;
    }

    private static X509Certificate2 CreateCa()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = Name([("2.5.4.6", "DE"), ("2.5.4.8", "Bavaria"), ("2.5.4.7", "munich"), ("2.5.4.10", "Acme"), ("2.5.4.11", "pki"), ("2.5.4.3", "Acme Device CA")]);
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        return X509CertificateLoader.LoadPkcs12(ca.Export(X509ContentType.Pkcs12), null);
    }
}
