using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Enrollment.Inventory;
using OmniBroker.Policy;

namespace OmniBroker.Enrollment.Issuing;

/// <summary>
/// Who may get which certificate: initial enrollment with a one-time token or a bootstrap certificate, and renewal
/// with the current certificate (EST simplereenroll and MQTT renew share <see cref="RenewAsync"/>). Every outcome is
/// counted; every issuance is an audit log event (1400) and an inventory row. Nothing is issued unless every check
/// passed; a token is consumed only once its CSR has been found acceptable.
/// </summary>
public sealed class EnrollmentService(
    EstOptions options,
    IssuingCertificateAuthority ca,
    ICertificateInventory inventory,
    IEnrollmentTokenStore tokens,
    ClientCertificateValidator operational,
    ClientCertificateValidator? bootstrap,
    IRevocationChecker? revocation,
    PolicyAuthorizer? policy,
    EnrollmentRateLimiter limiter,
    EnrollmentMetrics metrics,
    ILogger<EnrollmentService> logger)
{
    public const string MethodToken = "token";
    public const string MethodBootstrap = "bootstrap";
    public const string MethodRenewEst = "renew-est";
    public const string MethodRenewMqtt = "renew-mqtt";

    public IssuingCertificateAuthority Authority => ca;

    public EstOptions Options => options;

    /// <summary>Counts and logs a refusal found before the service was reached (content type, size, base64).</summary>
    public void CountRefusal(string method, string requester, EnrollmentException ex)
    {
        metrics.Refused(method, ex.Reason);
        EnrollmentLog.Refused(logger, method, requester, ex.StatusCode, ex.Reason, ex.Message);
    }

    /// <summary>RFC 7030 §3.2.3: HTTP Basic with a token from <c>omnibroker pki token</c> ("id:secret").</summary>
    public X509Certificate2 EnrollWithToken(string id, string secret, CertificateSigningRequest csr, string requester) => Run(MethodToken, requester, () =>
    {
        if (!tokens.TryPeek(id, secret, out var bound, out var reason))
        {
            throw new EnrollmentException(reason.StartsWith("unknown", StringComparison.Ordinal) ? 401 : 403, "bad-token", reason);
        }
        var subject = bound!;
        // The CSR may repeat what the token binds, nothing else: the certificate carries the token's subject.
        foreach (var attribute in csr.Subject)
        {
            var expected = attribute.PolicyName switch
            {
                "cert.cn" => subject.CommonName,
                "cert.o" => subject.Organization,
                "cert.ou" => subject.OrganizationalUnit,
                "cert.c" => subject.Country,
                "cert.l" => subject.Locality,
                _ => null,
            };
            if (expected != attribute.Value)
            {
                throw EnrollmentException.Forbidden("subject-not-allowed", $"the CSR asks for {Describe(attribute)} but token {id} is bound to CN={subject.CommonName}, O={subject.Organization}, OU={subject.OrganizationalUnit}");
            }
        }
        var urn = new SanEntry("uri", "urn:device:" + subject.CommonName);
        if (csr.SubjectAlternativeNames.Any(s => s != urn) || (csr.DeviceType is not null && csr.DeviceType != subject.DeviceType))
        {
            throw EnrollmentException.Forbidden("subject-not-allowed", $"the CSR asks for a SAN or device type token {id} does not bind (allowed: {urn.Value}, device type {subject.DeviceType})");
        }
        limiter.Acquire(subject.CommonName);
        if (!tokens.TryConsume(id, secret, out _, out reason))
        {
            throw EnrollmentException.Forbidden("bad-token", reason);
        }
        var name = BuildName(subject);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(urn.Value));
        return Issue(MethodToken, requester, name, csr, san.Build(), DeviceTypeExtension.Create(subject.DeviceType), supersedes: null);
    });

    /// <summary>A bootstrap (manufacturer) certificate chaining to Est:BootstrapTrustAnchors; the policy's enroll rules
    /// decide which subject it may ask for.</summary>
    public X509Certificate2 EnrollWithBootstrap(X509Certificate2 certificate, CertificateSigningRequest csr, string requester) => Run(MethodBootstrap, requester, () =>
    {
        if (bootstrap is null)
        {
            throw new EnrollmentException(401, "no-credentials", "enrollment needs a one-time token (HTTP Basic); no bootstrap trust anchor is configured (Est:BootstrapTrustAnchors)");
        }
        var validation = bootstrap.Validate(certificate);
        if (!validation.IsValid)
        {
            throw EnrollmentException.Forbidden("bad-bootstrap-certificate", $"the bootstrap certificate is not accepted: {validation.Detail}");
        }
        if (policy is null)
        {
            throw EnrollmentException.Forbidden("not-allowed", "no policy is loaded: nothing may enroll");
        }
        var requested = new EnrollmentSubject();
        foreach (var attribute in csr.Subject)
        {
            if (attribute.PolicyName.Length == 0)
            {
                throw EnrollmentException.BadRequest("unsupported-subject", $"subject attribute {attribute.Oid} is not issued (use CN, O, OU, C, ST, L)");
            }
            requested.Add(attribute.PolicyName, attribute.Value);
        }
        foreach (var entry in csr.SubjectAlternativeNames)
        {
            if (entry.Type == "other")
            {
                throw EnrollmentException.BadRequest("unsupported-san", "only URI and DNS subject alternative names are issued");
            }
            requested.Add("cert.san." + entry.Type, entry.Value);
        }
        if (csr.DeviceType is { } type)
        {
            requested.Add("cert.ext." + DeviceTypeExtension.Oid, type);
        }
        if (csr.CommonName is null)
        {
            throw EnrollmentException.BadRequest("unsupported-subject", "the CSR's subject has no CN");
        }
        var decision = policy.AuthorizeEnroll(certificate, requested);
        if (!decision.Allowed)
        {
            throw EnrollmentException.Forbidden("subject-not-allowed", $"enroll refused: {decision.Explanation}");
        }
        limiter.Acquire(csr.CommonName);
        X509Extension? san = null;
        if (csr.SubjectAlternativeNames.Count > 0)
        {
            var builder = new SubjectAlternativeNameBuilder();
            foreach (var entry in csr.SubjectAlternativeNames)
            {
                if (entry.Type == "uri") builder.AddUri(new Uri(entry.Value, UriKind.Absolute)); else builder.AddDnsName(entry.Value);
            }
            san = builder.Build();
        }
        return Issue(MethodBootstrap, requester, BuildName(csr.Subject), csr, san, csr.DeviceType is { } t ? DeviceTypeExtension.Create(t) : null, supersedes: null);
    });

    /// <summary>Renewal (RFC 7030 §4.2.2): the current certificate is checked like an MQTT connection (chain, not
    /// expired, revocation, policy action renew); the CSR's subject and SAN must be identical to it; a new key is
    /// allowed. The new certificate copies subject, SAN and device type from the current one.</summary>
    public async Task<X509Certificate2> RenewAsync(X509Certificate2? current, string method, string requester, CertificateSigningRequest csr, CancellationToken cancellationToken)
    {
        try
        {
            if (current is null)
            {
                throw new EnrollmentException(401, "no-credentials", "renewal needs the current certificate as the TLS client certificate");
            }
            var validation = operational.Validate(current);
            if (!validation.IsValid)
            {
                var reason = validation.Reason == CertificateFailureReason.Expired ? "expired" : "bad-certificate";
                throw EnrollmentException.Forbidden(reason, $"the current certificate is not accepted: {validation.Detail}");
            }
            if (revocation is not null)
            {
                var result = await revocation.CheckAsync(validation.Chain, cancellationToken).ConfigureAwait(false);
                if (!result.Admit)
                {
                    if (result.Status == RevocationStatus.Revoked)
                    {
                        inventory.MarkRevoked(current.SerialNumber);
                    }
                    throw EnrollmentException.Forbidden(result.Status == RevocationStatus.Revoked ? "revoked" : "revocation-unknown",
                        $"the current certificate cannot renew: revocation status {result.Status} ({result.Detail})");
                }
            }
            if (inventory.FindInactive(current.SerialNumber) is { } inactive)
            {
                throw EnrollmentException.Forbidden(inactive.Status, inactive.SupersededBy is null
                    ? $"the current certificate is {inactive.Status}"
                    : $"the current certificate was already renewed (superseded by {inactive.SupersededBy}): renew with the newest one");
            }
            if (policy is not null && !policy.IsAllowed(current, PolicyAction.Renew))
            {
                throw EnrollmentException.Forbidden("not-allowed", "no policy rule allows this certificate to renew (action renew)");
            }
            var currentSubject = CertificateSigningRequest.ReadName(current.SubjectName.RawData);
            if (!CertificateSigningRequest.SameIdentity(currentSubject, csr.Subject))
            {
                throw EnrollmentException.Forbidden("subject-changed", $"the CSR's subject '{csr.Request.SubjectName.Name}' differs from the current certificate's '{current.Subject}' (RFC 7030 §4.2.2)");
            }
            var sanExtension = current.Extensions["2.5.29.17"];
            var currentSan = sanExtension is null ? [] : CertificateSigningRequest.ReadSan(sanExtension.RawData);
            if (!CertificateSigningRequest.SameSan(currentSan, csr.SubjectAlternativeNames))
            {
                throw EnrollmentException.Forbidden("san-changed", $"the CSR's subjectAltName ({string.Join(", ", csr.SubjectAlternativeNames.Select(s => s.Type + ":" + s.Value))}) differs from the current certificate's ({string.Join(", ", currentSan.Select(s => s.Type + ":" + s.Value))})");
            }
            limiter.Acquire(current.GetNameInfo(X509NameType.SimpleName, false));
            // Copied from the current certificate, not from the CSR, so the policy keeps matching exactly.
            var deviceType = current.Extensions[DeviceTypeExtension.Oid];
            var issued = Issue(method, requester, current.SubjectName, csr, sanExtension, deviceType, current);
            return issued;
        }
        catch (EnrollmentException ex)
        {
            CountRefusal(method, requester, ex);
            throw;
        }
    }

    private X509Certificate2 Run(string method, string requester, Func<X509Certificate2> action)
    {
        try
        {
            return action();
        }
        catch (EnrollmentException ex)
        {
            CountRefusal(method, requester, ex);
            throw;
        }
    }

    private X509Certificate2 Issue(string method, string requester, X500DistinguishedName subject, CertificateSigningRequest csr, X509Extension? san, X509Extension? deviceType, X509Certificate2? supersedes)
    {
        var certificate = ca.Issue(subject, csr.Request.PublicKey, san, deviceType);
        inventory.RecordIssued(certificate, method, supersedes);
        metrics.Issued(method);
        EnrollmentLog.Issued(logger, certificate.SerialNumber, certificate.Subject, method, requester, csr.KeyDescription, certificate.NotAfter.ToUniversalTime());
        return certificate;
    }

    private static string Describe(NameAttribute attribute) =>
        (attribute.PolicyName.Length == 0 ? attribute.Oid : attribute.PolicyName[5..].ToUpperInvariant()) + "=" + attribute.Value;

    private static X500DistinguishedName BuildName(EnrollmentTokenSubject subject)
    {
        List<NameAttribute> attributes = [new("2.5.4.3", "cert.cn", subject.CommonName), new("2.5.4.11", "cert.ou", subject.OrganizationalUnit), new("2.5.4.10", "cert.o", subject.Organization)];
        if (subject.Locality is not null) attributes.Add(new("2.5.4.7", "cert.l", subject.Locality));
        if (subject.Country is not null) attributes.Add(new("2.5.4.6", "cert.c", subject.Country));
        return BuildName(attributes);
    }

    // Re-encoded from the checked values (C, ST, L, O, OU, CN order, as the development PKI does): the CSR's own
    // encoding is never copied into a certificate at initial enrollment.
    private static X500DistinguishedName BuildName(IEnumerable<NameAttribute> attributes)
    {
        string[] order = ["cert.cn", "cert.ou", "cert.o", "cert.l", "cert.st", "cert.c"];
        var builder = new X500DistinguishedNameBuilder();
        foreach (var attribute in attributes.OrderBy(a => Array.IndexOf(order, a.PolicyName)))
        {
            try
            {
                if (attribute.PolicyName == "cert.c")
                {
                    builder.AddCountryOrRegion(attribute.Value);
                }
                else
                {
                    builder.Add(attribute.Oid, attribute.Value);
                }
            }
            catch (ArgumentException ex)
            {
                throw EnrollmentException.BadRequest("unsupported-subject", $"{Describe(attribute)} cannot be issued: {ex.Message}");
            }
        }
        return builder.Build();
    }
}
