using Microsoft.Extensions.Configuration;

namespace OmniBroker.Host.Configuration;

/// <summary>
/// Where configuration comes from, lowest precedence first: built-in defaults, appsettings.json next to the
/// executable, appsettings.json in the working directory, environment variables prefixed OMNIBROKER_
/// (OMNIBROKER_Mqtt__Port=1883), then the command line (--Mqtt:Port=1883, or the friendly --port, --data-dir, --http-url).
/// </summary>
public static class BrokerConfiguration
{
    public const string EnvironmentPrefix = "OMNIBROKER_";

    /// <summary>Friendly command-line switches and the keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> SwitchMappings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--data-dir"] = BrokerSettings.DataDirectoryKey,
        ["--port"] = BrokerSettings.MqttPortKey,
        ["--http-url"] = BrokerSettings.HttpUrlKey,
        ["--policy-dir"] = BrokerSettings.PolicyDirectoryKey,
        [Metrics.ConsoleLogFormat.Switch] = Metrics.ConsoleLogFormat.FormatterNameKey,
    };

    private static readonly Dictionary<string, string?> s_defaults = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        // Kestrel would announce the MQTT listener as "https://": OmniBroker logs its own listening lines (6000, 6001).
        ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
    };

    /// <summary>Replaces the sources of <paramref name="builder"/> with OmniBroker's.</summary>
    public static IConfigurationBuilder AddBrokerSources(this IConfigurationBuilder builder, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Sources.Clear();
        builder.AddInMemoryCollection(s_defaults);

        var exeDirectory = Path.GetFullPath(AppContext.BaseDirectory);
        var workingDirectory = Path.GetFullPath(Directory.GetCurrentDirectory());
        builder.AddJsonFile(Path.Combine(exeDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        if (!string.Equals(exeDirectory.TrimEnd(Path.DirectorySeparatorChar), workingDirectory.TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            builder.AddJsonFile(Path.Combine(workingDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddCommandLine(args.ToArray(), SwitchMappings.ToDictionary(StringComparer.OrdinalIgnoreCase));
        return builder;
    }

    /// <summary>Configuration for commands that do not start the host (pki ...).</summary>
    /// <exception cref="BrokerConfigurationException">a command-line argument cannot be understood.</exception>
    public static IConfigurationRoot Build(IReadOnlyList<string> args)
    {
        try
        {
            return new ConfigurationBuilder().AddBrokerSources(args).Build();
        }
        catch (FormatException ex)
        {
            throw new BrokerConfigurationException([$"command line: {ex.Message}"]);
        }
        catch (InvalidDataException ex)
        {
            throw new BrokerConfigurationException([ex.Message]);
        }
    }
}

/// <summary>Start-up refused because of configuration; every problem is listed with the key it concerns.</summary>
public sealed class BrokerConfigurationException : Exception
{
    public BrokerConfigurationException(IReadOnlyList<string> errors)
        : base("invalid configuration:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  " + e)))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}
