using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Metrics;

/// <summary>
/// The console log format, chosen by configuration: <c>Logging:Console:FormatterName</c> = simple (default: one line
/// per event, local time), json (one JSON object per line: Timestamp, EventId, LogLevel, Category, Message, State
/// with every structured field) or systemd. Set it with <c>--log-format json</c>,
/// <c>--Logging:Console:FormatterName=json</c>, <c>OMNIBROKER_Logging__Console__FormatterName=json</c> or appsettings.json.
/// </summary>
public static class ConsoleLogFormat
{
    public const string FormatterNameKey = "Logging:Console:FormatterName";

    /// <summary>Command-line switch for <see cref="FormatterNameKey"/>.</summary>
    public const string Switch = "--log-format";

    private static readonly string[] s_formats = [ConsoleFormatterNames.Simple, ConsoleFormatterNames.Json, ConsoleFormatterNames.Systemd];

    /// <exception cref="BrokerConfigurationException">the configured format is not one of simple, json, systemd.</exception>
    public static ILoggingBuilder AddOmniBrokerConsole(this ILoggingBuilder logging, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(logging);
        ArgumentNullException.ThrowIfNull(configuration);
        var name = configuration[FormatterNameKey];
        if (!string.IsNullOrWhiteSpace(name) && !s_formats.Contains(name.Trim(), StringComparer.OrdinalIgnoreCase))
        {
            throw new BrokerConfigurationException([$"{FormatterNameKey}: '{name}' is not a console log format (simple, json, systemd)"]);
        }

        logging.AddConfiguration(configuration.GetSection("Logging"));
        logging.AddConsole();
        logging.Services.Configure<SimpleConsoleFormatterOptions>(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        logging.Services.Configure<JsonConsoleFormatterOptions>(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
            o.JsonWriterOptions = new System.Text.Json.JsonWriterOptions { Indented = false };
        });
        // The slim host builder already added a console pinned to "simple": the configured name wins over it.
        // Read when the options are first built, so configuration sources added after this call count too.
        logging.Services.PostConfigure<ConsoleLoggerOptions>(o =>
        {
            var configured = configuration[FormatterNameKey];
            o.FormatterName = string.IsNullOrWhiteSpace(configured) ? ConsoleFormatterNames.Simple : configured.Trim().ToLowerInvariant();
        });
        return logging;
    }
}
