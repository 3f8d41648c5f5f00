using System.Text.Json.Serialization;

namespace OmniBroker.Auth.Pki;

/// <summary>One row of the development CA database (<c>pki/index.json</c>).</summary>
public sealed class IssuedCertificate
{
    public const string StatusGood = "good";
    public const string StatusRevoked = "revoked";

    /// <summary>Serial number, upper-case hex as <see cref="System.Security.Cryptography.X509Certificates.X509Certificate2.SerialNumber"/>.</summary>
    [JsonPropertyName("serial")]
    public string Serial { get; set; } = "";

    [JsonPropertyName("cn")]
    public string CommonName { get; set; } = "";

    [JsonPropertyName("subject")]
    public string Subject { get; set; } = "";

    /// <summary>"root" (the intermediate) or "intermediate" (server and devices): which CA's CRL lists it.</summary>
    [JsonPropertyName("issuer")]
    public string Issuer { get; set; } = "";

    /// <summary>"intermediate", "server" or "device".</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    /// <summary>Certificate file, relative to the PKI directory.</summary>
    [JsonPropertyName("file")]
    public string File { get; set; } = "";

    [JsonPropertyName("notAfter")]
    public DateTimeOffset NotAfter { get; set; }

    /// <summary><see cref="StatusGood"/> or <see cref="StatusRevoked"/>.</summary>
    [JsonPropertyName("status")]
    public string Status { get; set; } = StatusGood;

    [JsonPropertyName("revokedAt")]
    public DateTimeOffset? RevokedAt { get; set; }

    /// <summary>RFC 5280 CRLReason name (e.g. "keyCompromise"), when revoked.</summary>
    [JsonPropertyName("revocationReason")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RevocationReason { get; set; }

    [JsonIgnore]
    public bool IsRevoked => Status == StatusRevoked;
}

/// <summary>Subject fields and lifetime of a device certificate to issue.</summary>
public sealed record DeviceCertificateRequest(string CommonName, string Organization, string OrganizationalUnit, string DeviceType)
{
    public string? Country { get; init; } = "DE";

    public string? Locality { get; init; }

    public int Days { get; init; } = 365;

    /// <summary>Extra SAN URIs besides <c>urn:device:&lt;cn&gt;</c>.</summary>
    public IReadOnlyList<string> Uris { get; init; } = [];
}
