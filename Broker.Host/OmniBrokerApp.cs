using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Host.Configuration;
using OmniBroker.Host.Enrollment;
using OmniBroker.Host.Metrics;
using OmniBroker.Host.WebSockets;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host;

/// <summary>
/// Builds the broker host: Kestrel with the MQTT over TLS listener (client certificate required) and the HTTP
/// listener. Tests build it in-process: <c>var app = OmniBrokerApp.Build(["--port=0", "--data-dir=/tmp/x"]);
/// await app.StartAsync(); var port = app.Services.GetRequiredService&lt;BrokerEndpoints&gt;().MqttEndPoint.Port;</c>
/// </summary>
public static class OmniBrokerApp
{
    /// <param name="args">configuration arguments (--Mqtt:Port=1883, --port 1883, --data-dir d, --http-url u).</param>
    /// <param name="configure">runs after the standard configuration sources are added and before the configuration
    /// is read: add sources (tests: in-memory values), logging providers or services.</param>
    /// <param name="overrideServices">runs after every registration: tests replace services here (a fake IRevocationChecker).</param>
    /// <exception cref="BrokerConfigurationException">the configuration is invalid (message names every bad key).</exception>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null, Action<IServiceCollection>? overrideServices = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = Directory.GetCurrentDirectory(),
            ApplicationName = typeof(OmniBrokerApp).Assembly.GetName().Name,
        });
        try
        {
            builder.Configuration.AddBrokerSources(args);
        }
        catch (FormatException ex)
        {
            throw new BrokerConfigurationException([$"command line: {ex.Message}"]);
        }
        catch (InvalidDataException ex)
        {
            throw new BrokerConfigurationException([ex.Message]);
        }
        builder.Logging.AddOmniBrokerConsole(builder.Configuration);
        configure?.Invoke(builder);

        var settings = BrokerSettings.Load(builder.Configuration);
        // Durations normalized by the front door, for the library options bound from the configuration later.
        builder.Configuration.AddInMemoryCollection(settings.NormalizedValues);
        ValidatePolicy(settings);
        CreateDataDirectory(settings);
        var tls = LoadTls(settings, out var developmentPki, out var pkiCreated);

        var services = builder.Services;
        services.AddSingleton(settings);
        var endpoints = new BrokerEndpoints();
        services.AddSingleton(endpoints);
        services.AddSingleton(settings.ConnectionLimits);
        services.AddSingleton<Connections.ConnectionCap>();
        // Registered after Kestrel's socket transport, so asked first; it binds only the device listener's DeviceEndPoint.
        services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory, Connections.DeviceSocketTransportFactory>();
        services.AddSingleton(new DevelopmentPkiState(developmentPki, pkiCreated));
        if (developmentPki is not null)
        {
            services.AddSingleton(developmentPki);
        }
        services.AddClientCertificateAuthentication(tls.Trust);
        // The Mqtt section was bound and validated once, by BrokerSettings: the engine gets that instance.
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(settings.Mqtt));
        services.AddMqttBroker();
        BrokerComposition.AddServices(builder, settings);
        overrideServices?.Invoke(services);

        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The direct TLS engine gets the device socket transport (an idle device holds no transport pipes).
            System.Net.IPEndPoint mqttEndPoint = tls.Mqtt.Engine == TlsEngine.Direct
                ? new Connections.DeviceEndPoint(settings.MqttAddress, settings.MqttPort)
                : new System.Net.IPEndPoint(settings.MqttAddress, settings.MqttPort);
            kestrel.Listen(mqttEndPoint, listen =>
            {
                endpoints.SetMqtt(listen);
                // First: a connection beyond the cap costs no PROXY parsing, no handshake slot and no TLS.
                listen.Use(listen.ApplicationServices.GetRequiredService<Connections.ConnectionCap>().Use);
                if (settings.ProxyProtocol)
                {
                    // Before TLS: a load balancer's PROXY v2 header precedes the ClientHello.
                    listen.UseProxyProtocol(settings.HandshakeTimeout);
                }
                listen.UseClientCertificateAuthentication(tls.Mqtt);
                listen.UseConnectionHandler<MqttConnectionHandler>();
            });
            // MQTT over secure WebSockets: the same MutualTlsOptions object, so the same certificate checks.
            kestrel.ListenMqttWebSockets(settings.WebSockets, tls.Mqtt, endpoints.SetWebSockets);
            kestrel.ListenEst(settings, tls.Mqtt, endpoints);
            if (settings.Http is { } http)
            {
                Action<ListenOptions> configureHttp = listen =>
                {
                    endpoints.AddHttp(listen);
                    // HTTP/2 needs TLS (ALPN) here: plain http stays HTTP/1.1.
                    listen.Protocols = http.Https ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
                    if (http.Https)
                    {
                        // The admin API authenticates callers by client certificate when not on loopback.
                        var validator = listen.ApplicationServices.GetRequiredService<ClientCertificateValidator>();
                        listen.UseHttps(new HttpsConnectionAdapterOptions
                        {
                            ServerCertificate = tls.Mqtt.ServerCertificate,
                            ServerCertificateChain = tls.Mqtt.ServerCertificateChain,
                            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                            ClientCertificateValidation = (certificate, chain, _) => validator.Validate(certificate, chain?.ChainPolicy.ExtraStore).IsValid,
                            HandshakeTimeout = settings.HandshakeTimeout,
                            SslProtocols = settings.TlsProtocols,
                        });
                    }
                };
                if (http.Localhost)
                {
                    kestrel.ListenLocalhost(http.Port, configureHttp);
                }
                else if (http.Address!.Equals(System.Net.IPAddress.IPv6Any))
                {
                    kestrel.ListenAnyIP(http.Port, configureHttp);
                }
                else
                {
                    kestrel.Listen(http.Address, http.Port, configureHttp);
                }
            }
        });

        var app = builder.Build();
        app.MapGet("/healthz", () => Microsoft.AspNetCore.Http.Results.Text("ok\n", "text/plain; charset=utf-8")).WithDisplayName("Liveness");
        BrokerComposition.MapEndpoints(app, settings);

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Host");
        if (developmentPki is not null)
        {
            var authLogger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Auth.Pki");
            DevelopmentPkiCommands.LogOpened(developmentPki, authLogger, pkiCreated);
        }
        if (settings.PolicyDirectory is not null)
        {
            HostLog.PolicyDirectory(logger, settings.PolicyDirectory);
        }
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            HostLog.MqttListening(logger, endpoints.MqttEndPoint);
            foreach (var endpoint in endpoints.HttpEndPoints)
            {
                HostLog.HttpListening(logger, endpoint);
            }
            endpoints.HttpBaseUrl = endpoints.ResolveHttpBaseUrl(settings.Http?.Https ?? false);
            if (developmentPki is not null && settings.Http is { } http && endpoints.HttpBaseUrl is { } actual &&
                (developmentPki.HttpBaseUrl.Port != actual.Port || developmentPki.HttpBaseUrl.Scheme != actual.Scheme))
            {
                HostLog.DevelopmentPkiUrlMismatch(logger, developmentPki.HttpBaseUrl, actual.ToString(), developmentPki.Directory);
            }
        });
        return app;
    }

    /// <summary>Variant for tests that only add configuration values.</summary>
    public static WebApplication Build(string[] args, Action<IConfigurationBuilder> configureConfiguration)
    {
        ArgumentNullException.ThrowIfNull(configureConfiguration);
        return Build(args, builder => configureConfiguration(builder.Configuration));
    }

    /// <summary>Compiles the policy once before anything starts, so that a broken or empty policy directory is a
    /// configuration error (one line per problem, exit code 2), not an exception thrown out of the host's start.</summary>
    private static void ValidatePolicy(BrokerSettings settings)
    {
        if (settings.PolicyDirectory is not { } directory)
        {
            return;
        }
        try
        {
            OmniBroker.Policy.PolicyAuthorizer.Load(directory);
        }
        catch (OmniBroker.Policy.PolicyLoadException ex)
        {
            throw new BrokerConfigurationException(ex.Errors.Select(e => $"{BrokerSettings.PolicyDirectoryKey}: {e}").ToList());
        }
    }

    private static void CreateDataDirectory(BrokerSettings settings)
    {
        try
        {
            Directory.CreateDirectory(settings.DataDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new BrokerConfigurationException([$"{BrokerSettings.DataDirectoryKey}: cannot create {settings.DataDirectory}: {ex.Message}"]);
        }
    }

    private static TlsMaterial LoadTls(BrokerSettings settings, out DevelopmentPki? developmentPki, out bool created)
    {
        var errors = new List<string>();
        developmentPki = null;
        created = false;
        if (settings.UsesDevelopmentPki)
        {
            var baseUrl = settings.Http?.PublicBaseUrl ?? new Uri(BrokerSettings.DefaultHttpUrl);
            try
            {
                developmentPki = DevelopmentPki.LoadOrCreate(settings.DevelopmentPkiDirectory, baseUrl, out created);
                var server = developmentPki.LoadServerCertificate(out var chain);
                return new TlsMaterial(
                    new TrustStore([developmentPki.RootCertificate], [developmentPki.IntermediateCertificate]),
                    Mqtt(settings, server, chain));
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or InvalidOperationException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                throw new BrokerConfigurationException([$"{BrokerSettings.DataDirectoryKey}: development PKI in {settings.DevelopmentPkiDirectory} cannot be used: {ex.Message}"]);
            }
        }

        X509Certificate2? serverCertificate = null;
        X509Certificate2Collection serverChain = [];
        try
        {
            PemCertificates.LoadAll(settings.ServerCertificatePath!);
            try
            {
                serverCertificate = PemCertificates.LoadWithKey(settings.ServerCertificatePath!, settings.ServerKeyPath!, out serverChain);
                if (!serverCertificate.HasPrivateKey)
                {
                    errors.Add($"{BrokerSettings.TlsServerKeyKey}: {settings.ServerKeyPath} does not hold the private key of {settings.ServerCertificatePath}");
                }
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"{BrokerSettings.TlsServerKeyKey}: {settings.ServerKeyPath}: not a readable PEM private key for {settings.ServerCertificatePath}");
            }
            catch (ArgumentException)
            {
                // X509Certificate2.CreateFromPemFile: a valid key of another certificate.
                errors.Add($"{BrokerSettings.TlsServerKeyKey}: {settings.ServerKeyPath} is not the private key of {settings.ServerCertificatePath}");
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            errors.Add($"{BrokerSettings.TlsServerCertificateKey}: {ex.Message}");
        }

        var anchors = LoadAll(settings.TrustAnchorPaths, BrokerSettings.TlsTrustAnchorsKey, errors);
        var intermediates = LoadAll(settings.IntermediatePaths, BrokerSettings.TlsIntermediatesKey, errors);
        foreach (var (key, anchor) in anchors)
        {
            if (anchor.NotAfter.ToUniversalTime() < DateTime.UtcNow)
            {
                errors.Add($"{key}: trust anchor {anchor.Subject} expired at {anchor.NotAfter.ToUniversalTime():u}");
            }
        }
        if (errors.Count > 0)
        {
            throw new BrokerConfigurationException(errors);
        }

        // Send the configured intermediates along with the server certificate when the certificate file had none.
        if (serverChain.Count == 0)
        {
            serverChain.AddRange(intermediates.Select(i => i.Certificate).ToArray());
        }
        return new TlsMaterial(
            new TrustStore(anchors.Select(a => a.Certificate), intermediates.Select(i => i.Certificate)),
            Mqtt(settings, serverCertificate!, serverChain));
    }

    private static List<(string Key, X509Certificate2 Certificate)> LoadAll(IReadOnlyList<string> paths, string key, List<string> errors)
    {
        var result = new List<(string, X509Certificate2)>();
        for (var i = 0; i < paths.Count; i++)
        {
            try
            {
                result.AddRange(PemCertificates.LoadAll(paths[i]).Select(c => ($"{key}[{i}]", c)));
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"{key}[{i}]: {ex.Message}");
            }
        }
        return result;
    }

    private static MutualTlsOptions Mqtt(BrokerSettings settings, X509Certificate2 server, X509Certificate2Collection chain) => new()
    {
        ServerCertificate = server,
        ServerCertificateChain = chain,
        AllowTlsResume = settings.AllowTlsResume,
        OpenSslTuning = settings.OpenSslTuning,
        Engine = settings.TlsEngine,
        HandshakeTimeout = settings.HandshakeTimeout,
        EnabledProtocols = settings.TlsProtocols,
        MaxConcurrentHandshakes = settings.MaxConcurrentHandshakes,
        HandshakeQueueTimeout = settings.HandshakeQueueTimeout,
    };

    private sealed record TlsMaterial(TrustStore Trust, MutualTlsOptions Mqtt);
}

/// <summary>Whether the development PKI is in use and whether this start created it (for the start-up banner).</summary>
public sealed record DevelopmentPkiState(DevelopmentPki? Pki, bool CreatedNow);
