using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Host;

namespace OmniBroker.Tests.Support;

/// <summary>The real host, in-process on 127.0.0.1 with free ports and a temporary data directory.</summary>
public sealed class TestBroker : IAsyncDisposable
{
    private readonly bool _ownsDataDirectory;

    private TestBroker(WebApplication app, CapturingLoggerProvider logs, string dataDirectory, bool ownsDataDirectory)
    {
        App = app;
        Logs = logs;
        DataDirectory = dataDirectory;
        _ownsDataDirectory = ownsDataDirectory;
    }

    public WebApplication App { get; }

    public CapturingLoggerProvider Logs { get; }

    public string DataDirectory { get; }

    public int MqttPort => App.Services.GetRequiredService<BrokerEndpoints>().MqttEndPoint.Port;

    public Uri HttpBaseUrl => App.Services.GetRequiredService<BrokerEndpoints>().HttpBaseUrl!;

    /// <param name="files">TLS files from a <see cref="TestPki"/>; null: the development PKI in the data directory.</param>
    /// <param name="services">runs after the host's registrations: replaces services (e.g. a fake IRevocationChecker).</param>
    /// <param name="dataDirectory">reuse a data directory (kept on dispose); null: a new temporary one.</param>
    public static async Task<TestBroker> StartAsync(TestPkiFiles? files = null, string? dataDirectory = null,
        IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        var owns = dataDirectory is null;
        dataDirectory ??= TempDirectory.Create("omnibroker-host");
        var values = new Dictionary<string, string?>
        {
            ["Mqtt:Address"] = "127.0.0.1",
            ["Mqtt:Port"] = "0",
            ["Http:Url"] = "http://127.0.0.1:0",
            ["DataDirectory"] = dataDirectory,
            ["Logging:LogLevel:OmniBroker"] = "Debug",
        };
        if (files is not null)
        {
            values["Tls:ServerCertificate"] = files.ServerCertificate;
            values["Tls:ServerKey"] = files.ServerKey;
            values["Tls:TrustAnchors:0"] = files.Root;
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }

        var logs = new CapturingLoggerProvider();
        var app = OmniBrokerApp.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(values);
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Debug);
            builder.Logging.AddProvider(logs);
        }, services);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new TestBroker(app, logs, dataDirectory, owns);
    }

    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await App.StopAsync(timeout.Token);
        }
        await App.DisposeAsync();
        if (_ownsDataDirectory)
        {
            TempDirectory.Delete(DataDirectory);
        }
    }

    public IPEndPoint MqttEndPoint => new(IPAddress.Loopback, MqttPort);
}

public static class TempDirectory
{
    public static string Create(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
