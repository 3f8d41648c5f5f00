using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// Revocation for the development PKI: CRLs of the root (lists revoked intermediates) and the intermediate (lists
/// revoked devices and servers) in <c>pki/crl/</c>, regenerated from <c>index.json</c> with an incremented cRLNumber,
/// and the answers of its OCSP responder. Files are replaced atomically so watchers never read half a CRL.
/// </summary>
internal static class DevelopmentPkiRevocation
{
    public const string CrlDirectory = "crl";
    public const string IntermediateCrlFile = "intermediate.crl";
    public const string RootCrlFile = "root.crl";

    /// <summary>Lifetime of a generated CRL; the broker re-issues it when less than <see cref="CrlReissueBefore"/> is left.</summary>
    public static readonly TimeSpan CrlLifetime = TimeSpan.FromDays(7);

    public static readonly TimeSpan CrlReissueBefore = TimeSpan.FromDays(2);

    /// <summary>OCSP answers are short-lived so a revocation shows quickly even where the CRL is not used.</summary>
    public static readonly TimeSpan OcspValidity = TimeSpan.FromMinutes(1);

    public static string IntermediateCrlPath(string pkiDirectory) => Path.Combine(pkiDirectory, CrlDirectory, IntermediateCrlFile);

    public static string RootCrlPath(string pkiDirectory) => Path.Combine(pkiDirectory, CrlDirectory, RootCrlFile);

    public static IReadOnlyList<string> CrlPaths(string pkiDirectory) => [IntermediateCrlPath(pkiDirectory), RootCrlPath(pkiDirectory)];

    /// <summary>Creates missing CRLs and re-issues those close to their nextUpdate. Returns true when a file was written.</summary>
    public static bool EnsureCrls(DevelopmentPki pki, TimeProvider time)
    {
        DateTimeOffset now = time.GetUtcNow();
        bool written = false;
        foreach (bool root in (bool[])[false, true])
        {
            string path = root ? RootCrlPath(pki.Directory) : IntermediateCrlPath(pki.Directory);
            if (!File.Exists(path) || NeedsReissue(path, now))
            {
                WriteCrl(pki, root, ReadIndex(pki.IndexPath), now);
                written = true;
            }
        }

        return written;
    }

    /// <summary>
    /// Marks the certificate with <paramref name="serial"/> (any kind) or the active device certificates with
    /// common name <paramref name="commonName"/> revoked in index.json and regenerates the issuing CA's CRL.
    /// </summary>
    /// <exception cref="InvalidOperationException">nothing matches, or it is revoked already.</exception>
    public static IReadOnlyList<IssuedCertificate> Revoke(DevelopmentPki pki, string? serial, string? commonName,
        X509RevocationReason reason, TimeProvider time)
    {
        DateTimeOffset now = time.GetUtcNow();
        List<IssuedCertificate> revoked;
        lock (pki.SyncRoot)
        {
            List<IssuedCertificate> matches = serial is not null
                ? pki.IssuedCertificates.Where(c => string.Equals(NormalizeSerial(c.Serial), NormalizeSerial(serial), StringComparison.OrdinalIgnoreCase)).ToList()
                : pki.IssuedCertificates.Where(c => c.Kind == "device" && string.Equals(c.CommonName, commonName, StringComparison.Ordinal)).ToList();
            if (matches.Count == 0)
            {
                throw new InvalidOperationException(serial is not null
                    ? $"no certificate with serial {serial} in {pki.IndexPath}"
                    : $"no device certificate with CN={commonName} in {pki.IndexPath}");
            }

            revoked = matches.Where(c => !c.IsRevoked).ToList();
            if (revoked.Count == 0)
            {
                throw new InvalidOperationException($"{matches[0].Subject} (serial {matches[0].Serial}) is already revoked");
            }

            foreach (IssuedCertificate row in revoked)
            {
                row.Status = IssuedCertificate.StatusRevoked;
                row.RevokedAt = now;
                row.RevocationReason = ReasonName(reason);
            }
        }

        pki.SaveIndex();
        IReadOnlyList<IssuedCertificate> index = ReadIndex(pki.IndexPath);
        foreach (bool root in revoked.Select(r => r.Issuer == "root").Distinct())
        {
            WriteCrl(pki, root, index, now);
        }

        return revoked;
    }

    /// <summary>Writes the CRL of the root (<paramref name="root"/>) or intermediate CA from the index rows,
    /// with cRLNumber one above the current file's. Returns the new number.</summary>
    public static BigInteger WriteCrl(DevelopmentPki pki, bool root, IReadOnlyList<IssuedCertificate> index, DateTimeOffset now)
    {
        string path = root ? RootCrlPath(pki.Directory) : IntermediateCrlPath(pki.Directory);
        BigInteger number = BigInteger.One;
        if (File.Exists(path))
        {
            try
            {
                CertificateRevocationListBuilder.Load(File.ReadAllBytes(path), out BigInteger current);
                number = current + 1;
            }
            catch (CryptographicException)
            {
                // A damaged CRL file is replaced; numbering restarts above anything a client could hold only if it
                // was readable, which it was not.
            }
        }

        string issuerName = root ? "root" : "intermediate";
        X509Certificate2 issuer = root ? pki.RootCertificate : pki.IntermediateCertificate;
        ECDsa key = root ? pki.RootKey : pki.IntermediateKey;
        CertificateRevocationListBuilder builder = new();
        foreach (IssuedCertificate row in index.Where(r => r.IsRevoked && r.Issuer == issuerName))
        {
            builder.AddEntry(Convert.FromHexString(NormalizeSerial(row.Serial)), row.RevokedAt ?? now, ParseReason(row.RevocationReason));
        }

        byte[] crl = builder.Build(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(key), number, now + CrlLifetime,
            HashAlgorithmName.SHA256, X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false), now.AddMinutes(-1));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temporary = path + ".tmp-" + Environment.ProcessId;
        File.WriteAllBytes(temporary, crl);
        File.Move(temporary, path, overwrite: true);
        return number;
    }

    /// <summary>Reads index.json fresh from disk (another process, `omnibroker pki revoke`, may have changed it).</summary>
    public static IReadOnlyList<IssuedCertificate> ReadIndex(string indexPath)
    {
        try
        {
            return JsonSerializer.Deserialize<IndexView>(File.ReadAllText(indexPath))?.Certificates ?? [];
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{indexPath}: not a valid development PKI index ({ex.Message})", ex);
        }
    }

    public static X509RevocationReason ParseReason(string? name) =>
        name is not null && Enum.TryParse(name, ignoreCase: true, out X509RevocationReason reason) ? reason : X509RevocationReason.Unspecified;

    /// <summary>RFC 5280 name of a reason, e.g. "keyCompromise".</summary>
    public static string ReasonName(X509RevocationReason reason)
    {
        string name = reason.ToString();
        return char.ToLowerInvariant(name[0]) + name[1..];
    }

    private static string NormalizeSerial(string serial) =>
        serial.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();

    private static bool NeedsReissue(string path, DateTimeOffset now)
    {
        try
        {
            ParsedCrl crl = ParsedCrl.Parse(File.ReadAllBytes(path));
            return crl.NextUpdate is not { } next || next - now < CrlReissueBefore;
        }
        catch (Exception ex) when (ex is RevocationFormatException or IOException)
        {
            return true;
        }
    }

    private sealed class IndexView
    {
        [JsonPropertyName("certificates")]
        public List<IssuedCertificate> Certificates { get; set; } = [];
    }
}

/// <summary>
/// The development PKI's OCSP responder (RFC 6960): answers for certificates of the root and intermediate CAs from
/// index.json (re-read when it changes), signed by the CA itself, echoing the request nonce.
/// </summary>
internal sealed class DevelopmentOcspResponder
{
    private readonly DevelopmentPki _pki;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private (DateTime, long) _stamp;
    private IReadOnlyList<IssuedCertificate> _index = [];

    public DevelopmentOcspResponder(DevelopmentPki pki, TimeProvider time, ILogger logger)
    {
        _pki = pki;
        _time = time;
        _logger = logger;
    }

    /// <summary>The DER response for a DER request; malformed requests get a malformedRequest response.</summary>
    public byte[] Respond(ReadOnlyMemory<byte> request)
    {
        OcspRequest parsed;
        try
        {
            parsed = OcspRequest.Parse(request);
        }
        catch (RevocationFormatException ex)
        {
            RevocationLog.DevOcspBadRequest(_logger, ex.Message);
            return OcspResponseBuilder.BuildError(OcspResponseStatus.MalformedRequest);
        }

        IReadOnlyList<IssuedCertificate> index;
        try
        {
            index = Index();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            RevocationLog.DevOcspBadRequest(_logger, $"index unreadable: {ex.Message}");
            return OcspResponseBuilder.BuildError(OcspResponseStatus.InternalError);
        }

        // One signer per response: the CA of the first CertID. Other CAs' certificates are answered "unknown".
        bool root = parsed.CertIds[0].IssuerIs(_pki.RootCertificate);
        if (!root && !parsed.CertIds[0].IssuerIs(_pki.IntermediateCertificate))
        {
            return OcspResponseBuilder.BuildError(OcspResponseStatus.Unauthorized);
        }

        X509Certificate2 ca = root ? _pki.RootCertificate : _pki.IntermediateCertificate;
        string issuerName = root ? "root" : "intermediate";
        DateTimeOffset now = _time.GetUtcNow();
        List<OcspResponseBuilder.Single> singles = [];
        foreach (OcspCertId id in parsed.CertIds)
        {
            IssuedCertificate? row = id.IssuerIs(ca)
                ? index.FirstOrDefault(r => r.Issuer == issuerName && string.Equals(r.Serial, id.SerialHex, StringComparison.OrdinalIgnoreCase))
                : null;
            singles.Add(row switch
            {
                null => new OcspResponseBuilder.Single(id, OcspCertStatus.Unknown, now, now + DevelopmentPkiRevocation.OcspValidity),
                { IsRevoked: true } => new OcspResponseBuilder.Single(id, OcspCertStatus.Revoked, now, now + DevelopmentPkiRevocation.OcspValidity,
                    row.RevokedAt ?? now, (int)DevelopmentPkiRevocation.ParseReason(row.RevocationReason)),
                _ => new OcspResponseBuilder.Single(id, OcspCertStatus.Good, now, now + DevelopmentPkiRevocation.OcspValidity),
            });
        }

        return OcspResponseBuilder.Build(ca, root ? _pki.RootKey : _pki.IntermediateKey, singles, now, parsed.NonceExtensionValue);
    }

    private IReadOnlyList<IssuedCertificate> Index()
    {
        FileInfo file = new(_pki.IndexPath);
        (DateTime, long) stamp = (file.LastWriteTimeUtc, file.Exists ? file.Length : -1);
        lock (_lock)
        {
            if (stamp != _stamp)
            {
                _index = DevelopmentPkiRevocation.ReadIndex(_pki.IndexPath);
                _stamp = stamp;
            }

            return _index;
        }
    }
}
