using System.CommandLine;

namespace OmniBroker.Host.Cli;

/// <summary>
/// The <c>omnibroker</c> command line. Composition point: one line per verb group in <see cref="Create"/>; each group
/// lives in its own file under Cli/ (or its feature folder). Without a verb, <c>serve</c> runs.
/// Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or arguments.
/// </summary>
public static class CliCommands
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadConfiguration = 2;

    public static RootCommand Create()
    {
        var root = new RootCommand("OmniBroker: an MQTT broker that admits only devices with a valid X.509 client certificate.");
        root.Subcommands.Add(ServeCommand.Create());
        var pki = PkiCommands.Create();
        pki.Subcommands.Add(PkiRevokeCommand.Create());
        pki.Subcommands.Add(PkiEnrollmentCommands.CreateToken());
        pki.Subcommands.Add(PkiEnrollmentCommands.CreateList());
        root.Subcommands.Add(pki);
        root.Subcommands.Add(PolicyCommands.Create());
        root.Subcommands.Add(StateCommands.Create());
        return root;
    }

    public static Task<int> InvokeAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var configuration = new InvocationConfiguration();
        if (output is not null)
        {
            configuration.Output = output;
        }
        if (error is not null)
        {
            configuration.Error = error;
        }
        return Create().Parse(WithDefaultVerb(args)).InvokeAsync(configuration);
    }

    /// <summary>"omnibroker", "omnibroker --port 1883": no verb means serve.</summary>
    internal static string[] WithDefaultVerb(string[] args)
    {
        if (args.Length == 0)
        {
            return ["serve"];
        }
        var first = args[0];
        if (first.StartsWith('-') && first is not ("-h" or "--help" or "-?" or "/?" or "--version"))
        {
            return ["serve", .. args];
        }
        return args;
    }

    internal static TextWriter Out(ParseResult parseResult) => parseResult.InvocationConfiguration.Output;

    internal static TextWriter Error(ParseResult parseResult) => parseResult.InvocationConfiguration.Error;
}
