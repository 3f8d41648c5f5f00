using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Host.Configuration;
using OmniBroker.Storage;

namespace OmniBroker.Host.Cli;

/// <summary><c>omnibroker serve</c>: runs the broker until SIGINT/SIGTERM.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var command = new Command("serve", "Run the broker (the default). Any --Section:Key=value sets a configuration key.");
        command.Options.Add(new Option<string>("--data-dir") { Description = "Data directory (DataDirectory; default ./data; the development PKI lives in <dir>/pki)" });
        command.Options.Add(new Option<string>("--port") { Description = "MQTT over TLS port (Mqtt:Port; default 8883)" });
        command.Options.Add(new Option<string>("--http-url") { Description = "HTTP listener (Http:Url; default http://127.0.0.1:9090, empty disables)" });
        command.Options.Add(new Option<string>("--policy-dir") { Description = "Policy directory (Policy:Directory)" });
        command.Options.Add(new Option<string>(Metrics.ConsoleLogFormat.Switch) { Description = "Console log format: simple (default), json, systemd (Logging:Console:FormatterName)" });
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parseResult, cancellationToken) => RunAsync(parseResult, cancellationToken));
        return command;
    }

    /// <summary>The configuration arguments of a serve/pki command line: friendly options re-emitted as key=value
    /// plus every unmatched --Section:Key=value token.</summary>
    internal static string[] ConfigurationArguments(ParseResult parseResult)
    {
        var args = new List<string>();
        foreach (var option in parseResult.CommandResult.Command.Options)
        {
            if (BrokerConfiguration.SwitchMappings.TryGetValue(option.Name, out var key) && parseResult.GetResult(option) is { Implicit: false } result)
            {
                args.Add($"--{key}={string.Join(';', result.Tokens.Select(t => t.Value))}");
            }
        }
        args.AddRange(parseResult.UnmatchedTokens);
        return args.ToArray();
    }

    private static async Task StopQuietlyAsync(WebApplication app)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await app.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The process exits next; nothing is left to stop gracefully.
        }
    }

    private static async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        WebApplication app;
        try
        {
            app = OmniBrokerApp.Build(ConfigurationArguments(parseResult));
        }
        catch (BrokerConfigurationException ex)
        {
            // One line per problem, each naming its key: greppable, and no stack trace.
            foreach (var error in ex.Errors)
            {
                await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: invalid configuration: {error}").ConfigureAwait(false);
            }
            return CliCommands.ExitBadConfiguration;
        }
        catch (StateStoreException ex)
        {
            // Corrupt, foreign or newer-schema state database: one line naming the file; the file is left as it was.
            await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: {ex.Message}").ConfigureAwait(false);
            return CliCommands.ExitFailure;
        }

        await using (app.ConfigureAwait(false))
        {
            var listenProblems = ListenerPreflight.Check(app.Services.GetRequiredService<BrokerSettings>());
            if (listenProblems.Count > 0)
            {
                foreach (var problem in listenProblems)
                {
                    await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: {problem}").ConfigureAwait(false);
                }
                return CliCommands.ExitFailure;
            }
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                // Stop what did start (background services) so that they end as in a normal shutdown, silently.
                await StopQuietlyAsync(app).ConfigureAwait(false);
                await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: cannot listen: {ex.Message}").ConfigureAwait(false);
                return CliCommands.ExitFailure;
            }
            catch (OmniBroker.Cluster.ClusterConnectException ex)
            {
                // TLS or credentials refused by NATS: retrying cannot help.
                await StopQuietlyAsync(app).ConfigureAwait(false);
                await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: cluster: {ex.Message}").ConfigureAwait(false);
                return CliCommands.ExitFailure;
            }
            catch (StateStoreException ex)
            {
                // Found damaged while restoring: nothing was written to it.
                await CliCommands.Error(parseResult).WriteLineAsync($"omnibroker: {ex.Message}").ConfigureAwait(false);
                return CliCommands.ExitFailure;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return CliCommands.ExitOk;
            }

            await CliCommands.Out(parseResult).WriteAsync(StartupBanner.Create(
                app.Services.GetRequiredService<BrokerSettings>(),
                app.Services.GetRequiredService<BrokerEndpoints>(),
                app.Services.GetRequiredService<DevelopmentPkiState>())).ConfigureAwait(false);

            // Returns after a graceful stop (SIGINT/SIGTERM or the cancellation token).
            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }
        return CliCommands.ExitOk;
    }
}
