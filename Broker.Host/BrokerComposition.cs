using Microsoft.AspNetCore.Builder;
using OmniBroker.Auth.Pki;
using OmniBroker.Host.Admin;
using OmniBroker.Host.Configuration;
using OmniBroker.Host.Enrollment;
using OmniBroker.Host.Metrics;
using OmniBroker.Host.Revocation;
using OmniBroker.Host.Storage;
using OmniBroker.Host.WebSockets;
using OmniBroker.Cluster;
using OmniBroker.Policy;

namespace OmniBroker.Host;

/// <summary>
/// Composition point of the host's feature modules: one line per feature in each method. Services registered in
/// <see cref="AddServices"/> are visible to the MQTT listener (IMqttAuthorizer, IRevocationChecker, IHandshakeObserver)
/// because Kestrel resolves it after the container is built. Endpoints are mapped on the HTTP listener (Http:Url);
/// /healthz is mapped by <see cref="OmniBrokerApp"/>.
/// </summary>
internal static class BrokerComposition
{
    public static void AddServices(WebApplicationBuilder builder, BrokerSettings settings)
    {
        builder.Services.AddOmniBrokerMetrics(builder.Configuration);
        if (settings.PolicyDirectory is { } policyDirectory) builder.Services.AddOmniBrokerPolicy(builder.Configuration, policyDirectory);
        builder.AddOmniBrokerRevocation(settings);
        if (settings.Cluster is { } cluster) builder.Services.AddOmniBrokerCluster(cluster); // before the store's restore
        builder.AddOmniBrokerStorage(settings);
        builder.AddOmniBrokerEst(settings); // after the policy: wraps its IMqttAuthorizer
        _ = settings;
    }

    public static void MapEndpoints(WebApplication app, BrokerSettings settings)
    {
        app.UseOmniBrokerEst(settings); // first: requests on the EST listener never reach the endpoints below
        app.UseMqttWebSockets(settings); // first: requests on the wss listener never reach the endpoints below
        app.MapPrometheusMetrics();
        var adminApi = app.MapAdminApi(mapHealthz: false);
        adminApi.MapCertificateInventory(settings);
        app.MapDevelopmentPkiEndpoints();
        _ = settings;
    }
}
