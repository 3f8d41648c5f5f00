using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Host.Configuration;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Storage;

namespace OmniBroker.Host.Storage;

/// <summary>
/// The Storage section: binds and validates <see cref="StorageOptions"/>, opens the SQLite state database while the
/// host is built (a corrupt or newer-schema file stops start-up before anything listens: <see cref="StateStoreException"/>
/// names it), registers it as the engine's <see cref="ISessionStore"/> and restores the state before the listeners start.
/// </summary>
internal static class StorageHostExtensions
{
    public static void AddOmniBrokerStorage(this WebApplicationBuilder builder, BrokerSettings settings)
    {
        var options = Load(builder.Configuration);
        builder.Services.AddSingleton(options);
        if (options.Mode == StorageMode.Memory)
        {
            return;
        }

        var path = options.ResolvePath(settings.DataDirectory);
        // The logger factory is not built yet: the store's own log lines go through a deferred logger.
        var logger = new DeferredLogger();
        var store = SqliteSessionStore.Open(options, path, logger);
        builder.Services.AddSingleton(store);
        // A factory, so that the container disposes it (after the broker, which depends on it): last commit on shutdown.
        if (settings.Cluster is { } cluster)
        {
            // Cluster mode: every persistent session is also copied to JetStream, so it stays resumable on another node.
            builder.Services.AddSingleton(sp => new Cluster.Replica.SessionReplica(sp.GetRequiredService<SqliteSessionStore>(), cluster.NodeId,
                cluster.ForwardTimeout, sp.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Cluster")));
            builder.Services.AddSingleton<ISessionStore>(sp => sp.GetRequiredService<Cluster.Replica.SessionReplica>());
        }
        else
        {
            builder.Services.AddSingleton<ISessionStore>(sp => sp.GetRequiredService<SqliteSessionStore>());
        }
        builder.Services.AddRestoredCertificateValidation();
        builder.Services.AddHostedService(sp =>
        {
            logger.Attach(sp.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Storage"));
            return ActivatorUtilities.CreateInstance<StateRestoreService>(sp);
        });
    }

    /// <exception cref="BrokerConfigurationException">naming each bad Storage key.</exception>
    public static StorageOptions Load(IConfiguration configuration)
    {
        var options = new StorageOptions();
        var errors = new List<string>();
        try
        {
            configuration.GetSection(StorageOptions.Section).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            errors.Add($"{StorageOptions.Section}: {ex.Message} (Mode: sqlite|memory, Durability: strict|relaxed)");
        }
        errors.AddRange(options.GetValidationErrors());
        if (errors.Count > 0)
        {
            throw new BrokerConfigurationException(errors);
        }
        return options;
    }
}

/// <summary>Restores the persisted sessions and retained messages before the MQTT listener accepts anyone (hosted
/// services start before the server), and logs how long it took.</summary>
internal sealed class StateRestoreService(Mqtt.Engine.MqttBroker broker, IRestoredIdentityValidator validator) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => broker.RestoreAsync(validator, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>A logger whose target is set once the host's logger factory exists; earlier lines are dropped (the store
/// logs nothing before the host starts).</summary>
internal sealed class DeferredLogger : ILogger
{
    private volatile ILogger? _target;

    public void Attach(ILogger target) => _target = target;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => _target?.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => _target?.IsEnabled(logLevel) ?? false;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _target?.Log(logLevel, eventId, state, exception, formatter);
}
