using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Auth.Pki;

/// <summary>
/// The development PKI's revocation endpoints on the broker's HTTP listener: GET /pki/crl/intermediate.crl and
/// /pki/crl/root.crl (DER, application/pkix-crl), and the OCSP responder (RFC 6960 Appendix A): POST /pki/ocsp
/// with application/ocsp-request, or GET /pki/ocsp/{url-encoded base64 request}. Nothing is mapped when the
/// development PKI is not in use.
/// </summary>
public static class DevelopmentPkiEndpoints
{
    private const int MaxRequestBytes = 16 * 1024;
    private const string OcspResponseType = "application/ocsp-response";

    public static IEndpointRouteBuilder MapDevelopmentPkiEndpoints(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        DevelopmentPki? pki = app.ServiceProvider.GetService<DevelopmentPki>();
        if (pki is null)
        {
            return app;
        }

        TimeProvider time = app.ServiceProvider.GetService<TimeProvider>() ?? TimeProvider.System;
        ILogger logger = app.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Auth.Revocation");
        DevelopmentOcspResponder responder = new(pki, time, logger);

        app.MapGet("/pki/crl/" + DevelopmentPkiRevocation.IntermediateCrlFile, () => ServeCrl(pki, time, DevelopmentPkiRevocation.IntermediateCrlPath(pki.Directory)))
            .WithDisplayName("Development PKI intermediate CRL");
        app.MapGet("/pki/crl/" + DevelopmentPkiRevocation.RootCrlFile, () => ServeCrl(pki, time, DevelopmentPkiRevocation.RootCrlPath(pki.Directory)))
            .WithDisplayName("Development PKI root CRL");

        app.MapPost("/pki/ocsp", async (HttpContext context) =>
        {
            if (context.Request.ContentLength is > MaxRequestBytes)
            {
                return Results.StatusCode(StatusCodes.Status413PayloadTooLarge);
            }

            byte[]? body = await ReadBodyAsync(context.Request, context.RequestAborted);
            if (body is null)
            {
                return Results.StatusCode(StatusCodes.Status413PayloadTooLarge);
            }

            return Results.Bytes(responder.Respond(body), OcspResponseType);
        }).WithDisplayName("Development PKI OCSP (POST)");

        app.MapGet("/pki/ocsp/{**request}", (HttpContext context) =>
        {
            // The raw target keeps %2F apart from '/', so the base64 survives whatever the client escaped.
            string raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "";
            int start = raw.IndexOf("/pki/ocsp/", StringComparison.Ordinal);
            string encoded = start < 0 ? "" : raw[(start + "/pki/ocsp/".Length)..];
            int query = encoded.IndexOf('?', StringComparison.Ordinal);
            if (query >= 0)
            {
                encoded = encoded[..query];
            }

            byte[] request;
            try
            {
                request = Convert.FromBase64String(Uri.UnescapeDataString(encoded));
            }
            catch (FormatException)
            {
                RevocationLog.DevOcspBadRequest(logger, "GET request path is not base64");
                return Results.Bytes(OcspResponseBuilder.BuildError(OcspResponseStatus.MalformedRequest), OcspResponseType);
            }

            return Results.Bytes(responder.Respond(request), OcspResponseType);
        }).WithDisplayName("Development PKI OCSP (GET)");

        return app;
    }

    private static IResult ServeCrl(DevelopmentPki pki, TimeProvider time, string path)
    {
        try
        {
            // Re-issues a CRL close to its nextUpdate, so a long-running development broker never serves a stale one.
            DevelopmentPkiRevocation.EnsureCrls(pki, time);
            return Results.Bytes(File.ReadAllBytes(path), "application/pkix-crl");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return Results.Problem($"CRL unavailable: {ex.Message}", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        using MemoryStream buffer = new();
        byte[] chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxRequestBytes)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
