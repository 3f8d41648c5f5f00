using System.Formats.Asn1;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Enrollment.Issuing;

namespace OmniBroker.Enrollment.Est;

/// <summary>
/// The EST server (RFC 7030 with RFC 8951's clarifications) under /.well-known/est/ on the EST listener only:
/// cacerts (no authentication), csrattrs, simpleenroll (one-time token over HTTP Basic, or a bootstrap client
/// certificate) and simplereenroll (the current certificate). Bodies are base64 DER; certificates come back as
/// certs-only PKCS#7; every refusal is text/plain with its status (400, 401, 403, 413, 415, 429 + Retry-After).
/// Requests reaching the EST port on any other path get 404, so nothing else of the host is served there.
/// </summary>
public static class EstEndpoints
{
    public const string PathPrefix = "/.well-known/est";
    public const string CertsOnlyContentType = "application/pkcs7-mime; smime-type=certs-only";

    /// <param name="isEstListener">true for requests that arrived on the EST listener (compares the local port).</param>
    public static void UseEst(this WebApplication app, Func<HttpContext, bool> isEstListener)
    {
        app.Use(async (http, next) =>
        {
            if (!isEstListener(http))
            {
                await next(http);
                return;
            }
            var service = http.RequestServices.GetRequiredService<EnrollmentService>();
            var path = http.Request.Path.Value ?? "";
            var operation = path.StartsWith(PathPrefix + "/", StringComparison.Ordinal) ? path[(PathPrefix.Length + 1)..] : null;
            switch (operation, http.Request.Method)
            {
                case ("cacerts", "GET"):
                    await WriteAsync(http, 200, "application/pkcs7-mime", Pkcs7CertsOnly.Base64(Pkcs7CertsOnly.Encode(service.Authority.Chain)));
                    return;
                case ("csrattrs", "GET"):
                    await WriteAsync(http, 200, "application/csrattrs", Pkcs7CertsOnly.Base64(CsrAttributes()));
                    return;
                case ("simpleenroll", "POST"):
                case ("simplereenroll", "POST"):
                    await EnrollAsync(http, service, operation == "simplereenroll");
                    return;
                case ("cacerts" or "csrattrs" or "simpleenroll" or "simplereenroll", _):
                    http.Response.Headers.Allow = operation is "cacerts" or "csrattrs" ? "GET" : "POST";
                    await WriteAsync(http, 405, "text/plain; charset=utf-8", $"{operation} does not take {http.Request.Method}\n");
                    return;
                default:
                    await WriteAsync(http, 404, "text/plain; charset=utf-8", $"not an EST operation: {path} (try {PathPrefix}/cacerts)\n");
                    return;
            }
        });
    }

    private static async Task EnrollAsync(HttpContext http, EnrollmentService service, bool renew)
    {
        var requester = http.Connection.RemoteIpAddress?.ToString() ?? "?";
        var method = renew ? EnrollmentService.MethodRenewEst : EnrollmentService.MethodBootstrap;
        try
        {
            var authorization = http.Request.Headers.Authorization.ToString();
            if (!renew && authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
            {
                method = EnrollmentService.MethodToken;
            }
            var csr = CertificateSigningRequest.Parse(await ReadBodyAsync(http, service.Options.MaxRequestBytes), service.Options.MinimumRsaBits);
            var client = http.Connection.ClientCertificate ?? await http.Connection.GetClientCertificateAsync(http.RequestAborted);
            var issued = renew
                ? await service.RenewAsync(client, method, requester, csr, http.RequestAborted)
                : method == EnrollmentService.MethodToken
                    ? EnrollWithToken(service, authorization, csr, requester)
                    : client is null
                        ? throw new EnrollmentException(401, "no-credentials", "enrollment needs a one-time token (HTTP Basic) or a bootstrap client certificate")
                        : service.EnrollWithBootstrap(client, csr, requester);
            await WriteAsync(http, 200, CertsOnlyContentType, Pkcs7CertsOnly.Base64(Pkcs7CertsOnly.Encode([issued])));
        }
        catch (EnrollmentException ex)
        {
            if (ex.Reason is "unsupported-media-type" or "too-large" or "bad-base64" or "bad-csr" or "bad-signature" or "weak-key")
            {
                // Found before the service ran: count here (the service counts its own refusals).
                service.CountRefusal(method, requester, ex);
            }
            if (ex.StatusCode == 401)
            {
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"omnibroker-est\"";
            }
            if (ex.RetryAfter is { } retry)
            {
                http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            }
            await WriteAsync(http, ex.StatusCode, "text/plain; charset=utf-8", ex.Message + "\n");
        }
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 EnrollWithToken(EnrollmentService service, string authorization, CertificateSigningRequest csr, string requester)
    {
        string credentials;
        try
        {
            credentials = Encoding.UTF8.GetString(Convert.FromBase64String(authorization["Basic ".Length..].Trim()));
        }
        catch (FormatException)
        {
            throw new EnrollmentException(401, "bad-token", "the Authorization header is not valid HTTP Basic");
        }
        var colon = credentials.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new EnrollmentException(401, "bad-token", "HTTP Basic credentials must be <token id>:<secret>");
        }
        return service.EnrollWithToken(credentials[..colon], credentials[(colon + 1)..], csr, requester);
    }

    // RFC 7030 §4.2.1: Content-Type application/pkcs10, body base64 of the DER request (RFC 8951 §3.2: no
    // Content-Transfer-Encoding needed; whitespace and line breaks are ignored).
    private static async Task<byte[]> ReadBodyAsync(HttpContext http, int maxBytes)
    {
        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var type) || !string.Equals(type.MediaType, "application/pkcs10", StringComparison.OrdinalIgnoreCase))
        {
            throw new EnrollmentException(415, "unsupported-media-type", $"Content-Type must be application/pkcs10 (base64 of a DER PKCS#10 request), not '{http.Request.ContentType}'");
        }
        if (http.Request.ContentLength > maxBytes)
        {
            throw new EnrollmentException(413, "too-large", $"the request body is larger than {maxBytes} bytes");
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes;
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        try
        {
            while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > maxBytes)
                {
                    throw new EnrollmentException(413, "too-large", $"the request body is larger than {maxBytes} bytes");
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413)
        {
            throw new EnrollmentException(413, "too-large", $"the request body is larger than {maxBytes} bytes");
        }
        try
        {
            var text = Encoding.ASCII.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            var der = Convert.FromBase64String(text);
            return der.Length == 0 ? throw new FormatException("empty") : der;
        }
        catch (FormatException)
        {
            throw EnrollmentException.BadRequest("bad-base64", "the body must be the base64 encoding of a DER PKCS#10 request (RFC 8951 §3.2)");
        }
    }

    // RFC 7030 §4.5.2 / RFC 8951 §4: sign with ecdsa-with-SHA256, an EC key on P-256, and ask for extensions freely.
    private static byte[] CsrAttributes()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier("1.2.840.10045.4.3.2");
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier("1.2.840.10045.2.1");
                using (writer.PushSetOf())
                {
                    writer.WriteObjectIdentifier("1.2.840.10045.3.1.7");
                }
            }
        }
        return writer.Encode();
    }

    private static async Task WriteAsync(HttpContext http, int status, string contentType, string body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = contentType;
        await http.Response.WriteAsync(body, http.RequestAborted);
    }
}
