using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OmniBroker.Auth.Pki;

/// <summary>
/// A throw-away certificate authority for development and tests, kept in one directory (<c>&lt;DataDirectory&gt;/pki</c>):
/// root CA (10 years) → intermediate CA (5 years, pathlen 0) → server certificate (localhost, 127.0.0.1, ::1) and
/// device certificates (1 year, clientAuth). ECDSA P-256 throughout for fast handshakes. Private keys are unencrypted
/// PKCS#8 PEM files readable by the owner only: never use this PKI in production.
/// <para>Files: root-ca.crt/.key, intermediate-ca.crt/.key, ca-chain.crt (intermediate + root), server.crt (server +
/// intermediate)/.key, devices/&lt;cn&gt;.crt (device + intermediate)/.key, index.json (the CA database).</para>
/// <para>Device certificates carry the device type in the private, non-critical extension <see cref="DeviceTypeOid"/>
/// (value: DER UTF8String), a SAN URI <c>urn:device:&lt;cn&gt;</c>, a CRL distribution point and an OCSP URL on the
/// broker's HTTP listener (<see cref="HttpBaseUrl"/>, fixed when the PKI is created).</para>
/// </summary>
public sealed class DevelopmentPki : IDisposable
{
    /// <summary>Private OID (under a placeholder enterprise arc) holding the device type as a DER UTF8String.</summary>
    public const string DeviceTypeOid = "1.3.6.1.4.1.59999.1.1";

    public const string RootCertificateFile = "root-ca.crt";
    public const string RootKeyFile = "root-ca.key";
    public const string IntermediateCertificateFile = "intermediate-ca.crt";
    public const string IntermediateKeyFile = "intermediate-ca.key";
    public const string CaChainFile = "ca-chain.crt";
    public const string ServerCertificateFile = "server.crt";
    public const string ServerKeyFile = "server.key";
    public const string DevicesDirectory = "devices";
    public const string IndexFile = "index.json";

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The devices created with a new PKI (see README).</summary>
    public static readonly IReadOnlyList<DeviceCertificateRequest> DefaultDevices =
    [
        new("sensor-001", "Acme", "sensors", "temperature-sensor") { Locality = "berlin" },
        new("sensor-002", "Acme", "sensors", "temperature-sensor") { Locality = "munich" },
        new("gw-berlin", "Acme", "gateways", "gateway") { Locality = "berlin" },
        new("backend-telemetry", "Acme", "backend", "service") { Uris = ["spiffe://acme/backend/telemetry"] },
        new("legacy-001", "Acme", "sensors", "legacy-thermostat"),
    ];

    private readonly object _lock = new();
    private readonly IndexDocument _index;
    private readonly TimeProvider _time;

    private DevelopmentPki(string directory, IndexDocument index, X509Certificate2 root, ECDsa rootKey, X509Certificate2 intermediate, ECDsa intermediateKey, TimeProvider time)
    {
        Directory = directory;
        _index = index;
        RootCertificate = root;
        RootKey = rootKey;
        IntermediateCertificate = intermediate;
        IntermediateKey = intermediateKey;
        _time = time;
        HttpBaseUrl = new Uri(index.HttpBaseUrl, UriKind.Absolute);
    }

    public string Directory { get; }

    /// <summary>Base of the CRL/OCSP URLs baked into issued certificates.</summary>
    public Uri HttpBaseUrl { get; }

    public X509Certificate2 RootCertificate { get; }

    public ECDsa RootKey { get; }

    public X509Certificate2 IntermediateCertificate { get; }

    public ECDsa IntermediateKey { get; }

    public string RootCertificatePath => Path.Combine(Directory, RootCertificateFile);

    public string IntermediateCertificatePath => Path.Combine(Directory, IntermediateCertificateFile);

    public string CaChainPath => Path.Combine(Directory, CaChainFile);

    public string ServerCertificatePath => Path.Combine(Directory, ServerCertificateFile);

    public string ServerKeyPath => Path.Combine(Directory, ServerKeyFile);

    public string IndexPath => Path.Combine(Directory, IndexFile);

    public string RootCrlUrl => CombineUrl(HttpBaseUrl, "pki/crl/root.crl");

    public string IntermediateCrlUrl => CombineUrl(HttpBaseUrl, "pki/crl/intermediate.crl");

    public string OcspUrl => CombineUrl(HttpBaseUrl, "pki/ocsp");

    /// <summary>Lock this while changing <see cref="IssuedCertificate"/> rows, then call <see cref="SaveIndex"/>.</summary>
    public object SyncRoot => _lock;

    /// <summary>Snapshot of the CA database (the rows themselves are live: change them under <see cref="SyncRoot"/>).</summary>
    public IReadOnlyList<IssuedCertificate> IssuedCertificates
    {
        get
        {
            lock (_lock)
            {
                return _index.Certificates.ToArray();
            }
        }
    }

    public IssuedCertificate? FindBySerial(string serial)
    {
        lock (_lock)
        {
            return _index.Certificates.FirstOrDefault(c => string.Equals(c.Serial, serial, StringComparison.OrdinalIgnoreCase));
        }
    }

    public string GetDeviceCertificatePath(string commonName) => Path.Combine(Directory, DevicesDirectory, commonName + ".crt");

    public string GetDeviceKeyPath(string commonName) => Path.Combine(Directory, DevicesDirectory, commonName + ".key");

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, IndexFile));

    /// <summary>Loads the PKI in <paramref name="directory"/>, creating it (with the default devices) when absent.</summary>
    public static DevelopmentPki LoadOrCreate(string directory, Uri httpBaseUrl, out bool created, TimeProvider? timeProvider = null)
    {
        created = !Exists(directory);
        return created ? Create(directory, httpBaseUrl, timeProvider) : Load(directory, timeProvider);
    }

    public static DevelopmentPki Load(string directory, TimeProvider? timeProvider = null)
    {
        directory = Path.GetFullPath(directory);
        var indexPath = Path.Combine(directory, IndexFile);
        IndexDocument index;
        try
        {
            index = JsonSerializer.Deserialize<IndexDocument>(File.ReadAllText(indexPath), s_json)
                ?? throw new InvalidDataException($"{indexPath}: empty");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{indexPath}: not a valid development PKI index ({ex.Message})", ex);
        }
        var root = LoadCertificateWithKey(Path.Combine(directory, RootCertificateFile), Path.Combine(directory, RootKeyFile), out var rootKey);
        var intermediate = LoadCertificateWithKey(Path.Combine(directory, IntermediateCertificateFile), Path.Combine(directory, IntermediateKeyFile), out var intermediateKey);
        return new DevelopmentPki(directory, index, root, rootKey, intermediate, intermediateKey, timeProvider ?? TimeProvider.System);
    }

    /// <summary>Creates a new PKI. The files appear all at once (built in a sibling directory, then moved).</summary>
    public static DevelopmentPki Create(string directory, Uri httpBaseUrl, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(httpBaseUrl);
        directory = Path.GetFullPath(directory);
        if (System.IO.Directory.Exists(directory) && System.IO.Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw new InvalidOperationException($"{directory} exists but holds no development PKI ({IndexFile} missing); move it away or fix it");
        }
        var time = timeProvider ?? TimeProvider.System;
        var staging = directory.TrimEnd(Path.DirectorySeparatorChar) + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        System.IO.Directory.CreateDirectory(staging);
        try
        {
            var now = time.GetUtcNow();
            var notBefore = now.AddMinutes(-5);
            var index = new IndexDocument { HttpBaseUrl = httpBaseUrl.ToString() };

            var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var rootRequest = new CertificateRequest(BuildName("DE", null, "OmniBroker Development", null, "OmniBroker Dev Root CA"), rootKey, HashAlgorithmName.SHA256);
            rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
            rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
            var root = rootRequest.CreateSelfSigned(notBefore, now.AddYears(10));
            root = X509CertificateLoader.LoadCertificate(root.RawData);

            var pki = new DevelopmentPki(staging, index, root, rootKey, null!, null!, time);
            var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var intermediateRequest = new CertificateRequest(BuildName("DE", null, "OmniBroker Development", null, "OmniBroker Dev Intermediate CA"), intermediateKey, HashAlgorithmName.SHA256);
            intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
            intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
            intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, true, false));
            intermediateRequest.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([pki.RootCrlUrl]));
            intermediateRequest.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([pki.OcspUrl], null));
            var intermediate = Sign(intermediateRequest, root, rootKey, notBefore, now.AddYears(5));

            WritePem(Path.Combine(staging, RootCertificateFile), PemCertificates.ToPem(root), secret: false);
            WritePem(Path.Combine(staging, RootKeyFile), rootKey.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
            WritePem(Path.Combine(staging, IntermediateCertificateFile), PemCertificates.ToPem(intermediate), secret: false);
            WritePem(Path.Combine(staging, IntermediateKeyFile), intermediateKey.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
            WritePem(Path.Combine(staging, CaChainFile), PemCertificates.ToPem(intermediate) + PemCertificates.ToPem(root), secret: false);
            index.Certificates.Add(Row(intermediate, "OmniBroker Dev Intermediate CA", "root", "intermediate", IntermediateCertificateFile));

            var withIntermediate = new DevelopmentPki(staging, index, root, rootKey, intermediate, intermediateKey, time);
            withIntermediate.IssueServer();
            foreach (var device in DefaultDevices)
            {
                withIntermediate.IssueDevice(device, saveIndex: false);
            }
            withIntermediate.SaveIndex();

            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
            if (System.IO.Directory.Exists(directory))
            {
                System.IO.Directory.Delete(directory);
            }
            System.IO.Directory.Move(staging, directory);
            return new DevelopmentPki(directory, index, root, rootKey, intermediate, intermediateKey, time);
        }
        catch
        {
            System.IO.Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    /// <summary>Issues a device certificate signed by the intermediate: devices/&lt;cn&gt;.crt (leaf + intermediate) and .key.</summary>
    public IssuedCertificate IssueDevice(DeviceCertificateRequest request) => IssueDevice(request, saveIndex: true);

    /// <summary>The server certificate with its key, and the intermediate to send along.</summary>
    public X509Certificate2 LoadServerCertificate(out X509Certificate2Collection chain) =>
        PemCertificates.LoadWithKey(ServerCertificatePath, ServerKeyPath, out chain);

    /// <summary>Writes index.json atomically.</summary>
    public void SaveIndex()
    {
        string json;
        lock (_lock)
        {
            json = JsonSerializer.Serialize(_index, s_json);
        }
        var temporary = IndexPath + ".tmp";
        File.WriteAllText(temporary, json + "\n");
        File.Move(temporary, IndexPath, overwrite: true);
    }

    /// <summary>The device type from extension <see cref="DeviceTypeOid"/>, or null when absent.</summary>
    public static string? ReadDeviceType(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions[DeviceTypeOid];
        if (extension is null)
        {
            return null;
        }
        return AsnDecoder.ReadCharacterString(extension.RawData, AsnEncodingRules.DER, UniversalTagNumber.UTF8String, out _);
    }

    public static X509Extension CreateDeviceTypeExtension(string deviceType)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteCharacterString(UniversalTagNumber.UTF8String, deviceType);
        return new X509Extension(DeviceTypeOid, writer.Encode(), critical: false);
    }

    public void Dispose()
    {
        RootKey.Dispose();
        IntermediateKey?.Dispose();
    }

    private IssuedCertificate IssueDevice(DeviceCertificateRequest request, bool saveIndex)
    {
        ValidateRequest(request);
        var certificatePath = GetDeviceCertificatePath(request.CommonName);
        lock (_lock)
        {
            if (File.Exists(certificatePath) || _index.Certificates.Any(c => c.Kind == "device" && c.CommonName == request.CommonName && !c.IsRevoked))
            {
                throw new InvalidOperationException($"a device certificate for CN={request.CommonName} already exists ({certificatePath})");
            }
        }

        var now = _time.GetUtcNow();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var certificateRequest = new CertificateRequest(
            BuildName(request.Country, request.Locality, request.Organization, request.OrganizationalUnit, request.CommonName), key, HashAlgorithmName.SHA256);
        certificateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        certificateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        certificateRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ClientAuthOid)], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri("urn:device:" + request.CommonName));
        foreach (var uri in request.Uris)
        {
            san.AddUri(new Uri(uri, UriKind.Absolute));
        }
        certificateRequest.CertificateExtensions.Add(san.Build());
        certificateRequest.CertificateExtensions.Add(CreateDeviceTypeExtension(request.DeviceType));
        AddLeafExtensions(certificateRequest);
        var certificate = Sign(certificateRequest, IntermediateCertificate, IntermediateKey, now.AddMinutes(-5), now.AddDays(request.Days));

        System.IO.Directory.CreateDirectory(Path.Combine(Directory, DevicesDirectory));
        WritePem(GetDeviceKeyPath(request.CommonName), key.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
        WritePem(certificatePath, PemCertificates.ToPem(certificate) + PemCertificates.ToPem(IntermediateCertificate), secret: false);

        var row = Row(certificate, request.CommonName, "intermediate", "device", Path.Combine(DevicesDirectory, request.CommonName + ".crt"));
        lock (_lock)
        {
            _index.Certificates.Add(row);
        }
        if (saveIndex)
        {
            SaveIndex();
        }
        return row;
    }

    private void IssueServer()
    {
        var now = _time.GetUtcNow();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(BuildName("DE", null, "OmniBroker Development", "broker", "localhost"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid)], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        AddLeafExtensions(request);
        var certificate = Sign(request, IntermediateCertificate, IntermediateKey, now.AddMinutes(-5), now.AddYears(2));
        WritePem(ServerKeyPath, key.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
        WritePem(ServerCertificatePath, PemCertificates.ToPem(certificate) + PemCertificates.ToPem(IntermediateCertificate), secret: false);
        lock (_lock)
        {
            _index.Certificates.Add(Row(certificate, "localhost", "intermediate", "server", ServerCertificateFile));
        }
    }

    private void AddLeafExtensions(CertificateRequest request)
    {
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(IntermediateCertificate, true, false));
        request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([IntermediateCrlUrl]));
        request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([OcspUrl], null));
    }

    private static void ValidateRequest(DeviceCertificateRequest request)
    {
        static bool SafeName(string s) => s.Length is > 0 and <= 64 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && s[0] != '.';
        if (!SafeName(request.CommonName))
        {
            throw new ArgumentException($"CN '{request.CommonName}' must be 1-64 characters of A-Z a-z 0-9 . _ - (it names the files)");
        }
        if (string.IsNullOrWhiteSpace(request.Organization) || string.IsNullOrWhiteSpace(request.OrganizationalUnit) || string.IsNullOrWhiteSpace(request.DeviceType))
        {
            throw new ArgumentException("O, OU and device type must not be empty");
        }
        if (request.Days is < 1 or > 3650)
        {
            throw new ArgumentException($"days {request.Days} must be between 1 and 3650");
        }
        if (request.Country is { } country && (country.Length != 2 || !country.All(char.IsAsciiLetterUpper)))
        {
            throw new ArgumentException($"C '{country}' must be a two-letter upper-case country code");
        }
        foreach (var uri in request.Uris)
        {
            if (!Uri.TryCreate(uri, UriKind.Absolute, out _))
            {
                throw new ArgumentException($"SAN URI '{uri}' is not an absolute URI");
            }
        }
    }

    private static X500DistinguishedName BuildName(string? country, string? locality, string organization, string? organizationalUnit, string commonName)
    {
        // The builder encodes in reverse order of the calls: this encodes C first (most significant, as RFC 5280
        // examples and OpenSSL do), and prints as "CN=..., OU=..., O=..., L=..., C=...".
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(commonName);
        if (organizationalUnit is not null)
        {
            builder.AddOrganizationalUnitName(organizationalUnit);
        }
        builder.AddOrganizationName(organization);
        if (locality is not null)
        {
            builder.AddLocalityName(locality);
        }
        if (country is not null)
        {
            builder.AddCountryOrRegion(country);
        }
        return builder.Build();
    }

    private static X509Certificate2 Sign(CertificateRequest request, X509Certificate2 issuer, ECDsa issuerKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var issuerNotAfter = new DateTimeOffset(issuer.NotAfter.ToUniversalTime());
        if (notAfter > issuerNotAfter)
        {
            notAfter = issuerNotAfter;
        }
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40); // positive, fixed length
        using var certificate = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), notBefore, notAfter, serial);
        return X509CertificateLoader.LoadCertificate(certificate.RawData);
    }

    private static IssuedCertificate Row(X509Certificate2 certificate, string commonName, string issuer, string kind, string file) => new()
    {
        Serial = certificate.SerialNumber,
        CommonName = commonName,
        Subject = certificate.Subject,
        Issuer = issuer,
        Kind = kind,
        File = file.Replace('\\', '/'),
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime()),
        Status = IssuedCertificate.StatusGood,
    };

    private static X509Certificate2 LoadCertificateWithKey(string certificatePath, string keyPath, out ECDsa key)
    {
        var certificate = PemCertificates.LoadAll(certificatePath)[0];
        key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(keyPath));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{keyPath}: not a PEM private key ({ex.Message})", ex);
        }
        return certificate;
    }

    private static void WritePem(string path, string content, bool secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(path, options))
        {
            stream.Write(Encoding.ASCII.GetBytes(content));
        }
        if (secret && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static string CombineUrl(Uri baseUrl, string path) => baseUrl.ToString().TrimEnd('/') + "/" + path;

    private sealed class IndexDocument
    {
        [JsonPropertyName("version")]
        public int Version { get; set; } = 1;

        [JsonPropertyName("httpBaseUrl")]
        public string HttpBaseUrl { get; set; } = "";

        [JsonPropertyName("certificates")]
        public List<IssuedCertificate> Certificates { get; set; } = [];
    }
}
