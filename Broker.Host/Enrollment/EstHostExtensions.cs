using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Enrollment;
using OmniBroker.Enrollment.Est;
using OmniBroker.Enrollment.Inventory;
using OmniBroker.Enrollment.Issuing;
using OmniBroker.Enrollment.Mqtt;
using OmniBroker.Host.Configuration;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host.Enrollment;

/// <summary>
/// Wires Broker.Enrollment into the host when Est:Enabled: the issuing CA (configured, else the development PKI's
/// intermediate), the EST HTTPS listener (server certificate of the MQTT listener; any client certificate is let
/// through TLS and checked per request), MQTT renewal on $omnibroker/certificates/renew, and GET /api/certificates.
/// </summary>
internal static class EstHostExtensions
{
    public const string InventoryFileName = "certificates.db";

    public static string InventoryPath(BrokerSettings settings) => settings.Est.InventoryFile ?? Path.Combine(settings.DataDirectory, InventoryFileName);

    public static void AddOmniBrokerEst(this WebApplicationBuilder builder, BrokerSettings settings)
    {
        var est = settings.Est;
        if (!est.Enabled)
        {
            return;
        }
        var errors = new List<string>();
        var pki = (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(DevelopmentPkiState))?.ImplementationInstance as DevelopmentPkiState)?.Pki;
        IssuingCertificateAuthority? ca = null;
        try
        {
            if (est.CaCertificate is not null && est.CaKey is not null)
            {
                var passphrase = est.CaKeyPassphraseEnvironmentVariable is { } variable ? Environment.GetEnvironmentVariable(variable)
                    : est.CaKeyPassphraseFile is { } file ? File.ReadAllText(file).TrimEnd('\r', '\n') : null;
                ca = IssuingCertificateAuthority.Load(est.CaCertificate, est.CaKey, passphrase, est);
            }
            else if (pki is not null)
            {
                ca = IssuingCertificateAuthority.FromDevelopmentPki(pki, est);
            }
            else
            {
                errors.Add($"{EstOptions.Section}:CaCertificate: required with {BrokerSettings.TlsServerCertificateKey} (there is no development PKI to issue from)");
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            errors.Add($"{EstOptions.Section}:CaKey: {ex.Message}");
        }

        TrustStore? bootstrap = null;
        if (est.BootstrapTrustAnchors.Count > 0)
        {
            var certificates = new List<X509Certificate2>();
            foreach (var path in est.BootstrapTrustAnchors)
            {
                try
                {
                    certificates.AddRange(PemCertificates.LoadAll(path));
                }
                catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
                {
                    errors.Add($"{EstOptions.Section}:BootstrapTrustAnchors: {ex.Message}");
                }
            }
            // Self-signed certificates are anchors; the others are intermediates on the way to them.
            bootstrap = new TrustStore(certificates.Where(c => c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData)),
                certificates.Where(c => !c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData)));
        }
        if (errors.Count > 0)
        {
            throw new BrokerConfigurationException(errors);
        }
        builder.Services.AddOmniBrokerEnrollment(est, ca!, InventoryPath(settings), bootstrap);
    }

    public static void ListenEst(this KestrelServerOptions kestrel, BrokerSettings settings, MutualTlsOptions tls, BrokerEndpoints endpoints)
    {
        if (!settings.Est.Enabled)
        {
            return;
        }
        kestrel.Listen(settings.Est.Address, settings.Est.Port, listen =>
        {
            endpoints.SetEst(listen);
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = tls.ServerCertificate,
                ServerCertificateChain = tls.ServerCertificateChain,
                // Bootstrap (manufacturer) and operational certificates chain to different anchors, and token
                // enrollment has none: TLS lets any client certificate through, each operation validates its own.
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (_, _, _) => true,
                HandshakeTimeout = settings.HandshakeTimeout,
            });
        });
    }

    public static void UseOmniBrokerEst(this WebApplication app, BrokerSettings settings)
    {
        if (!settings.Est.Enabled)
        {
            return;
        }
        var endpoints = app.Services.GetRequiredService<BrokerEndpoints>();
        app.UseEst(http => endpoints.EstEndPoint is { } est && http.Connection.LocalPort == est.Port);
        if (settings.Est.MqttRenewal)
        {
            app.Services.GetRequiredService<MqttBroker>().ReservedTopicHandler = app.Services.GetRequiredService<MqttRenewalHandler>();
        }
        var service = app.Services.GetRequiredService<EnrollmentService>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Enrollment");
        app.Lifetime.ApplicationStarted.Register(() => EnrollmentLogHost.Listening(logger, endpoints.EstEndPoint, service.Authority.Certificate.Subject));
    }

    /// <summary>GET /api/certificates?expiringWithinDays=N&amp;status=active|superseded|revoked&amp;cn=&amp;o=&amp;ou=&amp;limit=.</summary>
    public static void MapCertificateInventory(this RouteGroupBuilder api, BrokerSettings settings)
    {
        if (!settings.Est.Enabled)
        {
            return;
        }
        api.MapGet("/certificates", (HttpContext http) =>
        {
            var query = http.Request.Query;
            int? days = null;
            if (query["expiringWithinDays"].ToString() is { Length: > 0 } text)
            {
                if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > 36500)
                {
                    return Results.Problem(statusCode: 400, title: "Invalid expiringWithinDays", detail: "expiringWithinDays must be a whole number of days from 0 to 36500");
                }
                days = value;
            }
            var status = query["status"].ToString() is { Length: > 0 } s ? s : null;
            if (status is not (null or CertificateStatus.Active or CertificateStatus.Superseded or CertificateStatus.Revoked))
            {
                return Results.Problem(statusCode: 400, title: "Invalid status", detail: "status must be active, superseded or revoked");
            }
            var limit = 1000;
            if (query["limit"].ToString() is { Length: > 0 } l && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 100_000))
            {
                return Results.Problem(statusCode: 400, title: "Invalid limit", detail: "limit must be from 1 to 100000");
            }
            string? Text(string key) => query[key].ToString() is { Length: > 0 } v ? v : null;
            var inventory = http.RequestServices.GetRequiredService<ICertificateInventory>();
            return Results.Json(inventory.Query(new CertificateQuery(days, status, Text("cn"), Text("o"), Text("ou"), limit)));
        }).WithDisplayName("Admin: certificate inventory");
    }
}

internal static partial class EnrollmentLogHost
{
    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "EST listening on https://{EndPoint}/.well-known/est/ (issuing CA '{Ca}')")]
    public static partial void Listening(ILogger logger, System.Net.IPEndPoint? endPoint, string ca);
}
