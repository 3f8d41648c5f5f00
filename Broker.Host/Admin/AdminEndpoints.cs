using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Cluster;
using OmniBroker.Host.Metrics;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;

namespace OmniBroker.Host.Admin;

public static class AdminEndpoints
{
    /// <summary>
    /// Maps the admin API on the HTTP listener: GET /api/clients, DELETE /api/clients/{id},
    /// GET /api/certificates/expiring?days=N (behind <see cref="AdminAccessFilter"/>), and the open probes
    /// /readyz and, when <paramref name="mapHealthz"/>, /healthz. The listener's bind address (config Http:Url)
    /// decides the protection: loopback-only binds are open to local callers, any other bind (or
    /// Admin:RequireClientCertificate=true) requires HTTPS, a client certificate and an <see cref="IAdminAuthorizer"/>
    /// that grants it <c>admin</c> (by default the policy's <c>admin</c> action).
    /// </summary>
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder endpoints, bool mapHealthz = true, Action<AdminOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var services = endpoints.ServiceProvider;
        var configuration = services.GetService<IConfiguration>();
        var urls = configuration?[AdminOptions.HttpUrlKey] ?? AdminOptions.DefaultHttpUrl;
        var requireCertificate = configuration?.GetValue<bool?>(AdminOptions.RequireClientCertificateKey) ?? false;
        var options = new AdminOptions
        {
            LoopbackOnly = !requireCertificate && AdminOptions.IsLoopbackBinding(urls),
            AllowedHosts = AdminOptions.ReadAllowedHosts(configuration),
        };
        configure?.Invoke(options);

        var logger = services.GetService<ILoggerFactory>()?.CreateLogger("OmniBroker.Host.Admin") ?? NullLogger.Instance;
        var authorizer = services.GetService<IAdminAuthorizer>()
            ?? (PolicyAdminAuthorizer.IsAvailable(services) ? new PolicyAdminAuthorizer(services) : null);
        if (!options.LoopbackOnly)
        {
            AdminLog.NotLoopback(logger, urls);
            if (authorizer is null)
            {
                AdminLog.NoAuthorizer(logger);
            }
        }

        if (mapHealthz)
        {
            endpoints.MapGet("/healthz", () => Results.Text("ok\n", "text/plain; charset=utf-8")).WithDisplayName("Liveness");
        }

        endpoints.MapGet("/readyz", (HttpContext http) => Readiness(http.RequestServices)).WithDisplayName("Readiness");

        var api = endpoints.MapGroup("/api");
        api.AddEndpointFilter(new AdminAccessFilter(options, authorizer, endpoints.ServiceProvider.GetService<AdminMetrics>(), logger));

        api.MapGet("/clients", async (HttpContext http) =>
        {
            var broker = http.RequestServices.GetService<MqttBroker>();
            if (broker is null)
            {
                return NoBroker();
            }

            return Results.Json(await AdminClusterView.ListAsync(broker, http.RequestServices.GetService<ClusterNode>(), http.RequestAborted));
        }).WithDisplayName("Admin: list clients");

        // Catch-all so client ids containing '/' can be addressed; Kestrel leaves %2F encoded in the path.
        api.MapDelete("/clients/{**id}", async (string id, HttpContext http) =>
        {
            var broker = http.RequestServices.GetService<MqttBroker>();
            if (broker is null)
            {
                return NoBroker();
            }

            id = id.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            if (http.RequestServices.GetService<ClusterNode>() is { } cluster)
            {
                // Wherever the client is connected: here, or the node its claim in omni_clients names.
                var result = await cluster.DisconnectClientAsync(id, http.RequestAborted);
                AdminLog.ClusterDisconnect(logger, id, result.ToString(), http.Connection.RemoteIpAddress);
                return AdminClusterView.Status(result, id);
            }
            if (!broker.DisconnectClient(id, MqttReasonCode.AdministrativeAction))
            {
                AdminLog.ClientNotFound(logger, id);
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such client",
                    detail: $"no connected client has the id '{id}'");
            }

            AdminLog.ClientDisconnected(logger, id, http.Connection.RemoteIpAddress);
            return Results.NoContent();
        }).WithDisplayName("Admin: disconnect client");

        api.MapGet("/certificates/expiring", (HttpContext http) =>
        {
            var broker = http.RequestServices.GetService<MqttBroker>();
            if (broker is null)
            {
                return NoBroker();
            }

            int days = options.DefaultExpiringDays;
            var raw = http.Request.Query["days"];
            if (raw.Count > 0 && (raw.Count > 1 || !int.TryParse(raw[0], NumberStyles.None, CultureInfo.InvariantCulture, out days) || days > 36500))
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid days",
                    detail: "days must be one whole number of days between 0 and 36500");
            }

            var before = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow().AddDays(days);
            var clients = broker.GetConnectedClients()
                .Where(c => c.Certificate is not null && new DateTimeOffset(c.Certificate.NotAfter) < before)
                .Select(AdminClient.From)
                .OrderBy(c => c.NotAfter)
                .ThenBy(c => c.Id, StringComparer.Ordinal)
                .ToList();
            return Results.Json(new ExpiringCertificates(days, before, clients));
        }).WithDisplayName("Admin: expiring certificates");

        return api;
    }

    private static IResult NoBroker() =>
        Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "MQTT engine not running",
            detail: "this host has no MQTT engine registered");

    private static IResult Readiness(IServiceProvider services)
    {
        var checks = new SortedDictionary<string, bool>(StringComparer.Ordinal);

        // ApplicationStarted fires after every hosted service, Kestrel included, has started: all listeners are bound.
        var lifetime = services.GetService<IHostApplicationLifetime>();
        checks["listeners"] = lifetime?.ApplicationStarted.IsCancellationRequested ?? true;
        if (lifetime?.ApplicationStopping.IsCancellationRequested == true)
        {
            checks["listeners"] = false;
        }

        // An authorizer exists only with a valid policy (the last good one is kept across broken reloads).
        if (services.GetService<PolicyAuthorizer>() is not null)
        {
            checks["policy"] = true;
        }

        foreach (var check in services.GetServices<IReadinessCheck>())
        {
            checks[check.Name] = check.IsReady;
        }

        bool ready = checks.Values.All(static v => v);
        return Results.Json(new ReadinessReport(ready ? "ready" : "not_ready", checks),
            statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }
}

/// <summary>
/// Guards /api/*: with a loopback-only listener, refuses only a non-loopback peer (which can then only come
/// through a forwarding proxy); otherwise requires HTTPS, a client certificate and an admin grant, and refuses
/// everyone else with 403. Each decision is counted as omnibroker_admin_requests_total{result}.
/// </summary>
internal sealed class AdminAccessFilter(AdminOptions options, IAdminAuthorizer? authorizer, AdminMetrics? metrics, ILogger logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (options.LoopbackOnly && !options.IsAllowedHost(http.Request.Host.Host))
        {
            // DNS rebinding: a browser page that resolved its own name to 127.0.0.1. 421: not this server's name.
            metrics?.Decision(allowed: false);
            AdminLog.RequestRefused(logger, http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress,
                $"Host '{http.Request.Host.Host}' is neither a loopback name nor in {AdminOptions.AllowedHostsKey}");
            return Results.Problem(statusCode: StatusCodes.Status421MisdirectedRequest, title: "Misdirected request",
                detail: $"this admin API answers only loopback host names and those in {AdminOptions.AllowedHostsKey}");
        }
        var refusal = await CheckAsync(http);
        metrics?.Decision(allowed: refusal is null);
        if (refusal is not null)
        {
            AdminLog.RequestRefused(logger, http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress, refusal);
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Admin API access refused", detail: refusal);
        }

        return await next(context);
    }

    private async ValueTask<string?> CheckAsync(HttpContext http)
    {
        if (options.LoopbackOnly)
        {
            var remote = http.Connection.RemoteIpAddress;
            // In-process callers (no socket) have no remote address.
            return remote is null || IPAddress.IsLoopback(remote) ? null : "the admin API is only served to loopback callers";
        }

        if (!http.Request.IsHttps)
        {
            return "the admin API requires HTTPS on a non-loopback listener";
        }

        var certificate = http.Connection.ClientCertificate ?? await http.Connection.GetClientCertificateAsync(http.RequestAborted);
        if (certificate is null)
        {
            return "the admin API requires a client certificate";
        }

        if (authorizer is null)
        {
            return "no admin authorizer is configured";
        }

        return authorizer.IsAdmin(certificate) ? null : $"certificate {certificate.Subject} has no admin grant";
    }
}
