using System.CommandLine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;

namespace OmniBroker.Host.Cli;

/// <summary>
/// <c>omnibroker policy lint [DIR]</c> and <c>omnibroker policy explain --cert DEVICE.pem (--connect | --publish TOPIC |
/// --subscribe FILTER | --receive TOPIC | --admin) ...</c>: let platform teams check policy files before shipping them.
/// Exit codes: lint 0 valid, 1 invalid; explain 0 allow, 1 deny, 2 bad arguments/certificate/policy.
/// </summary>
internal static class PolicyCommands
{
    private const string DefaultDirectory = "./policies";

    public static Command Create()
    {
        var policy = new Command("policy", "Check policy files and explain decisions.");
        policy.Subcommands.Add(CreateLint());
        policy.Subcommands.Add(CreateExplain());
        return policy;
    }

    private static Command CreateLint()
    {
        var directory = new Argument<string>("DIR")
        {
            Description = $"Policy directory (default {DefaultDirectory})",
            DefaultValueFactory = _ => DefaultDirectory,
        };
        var command = new Command("lint", "Validate every policy file in DIR; prints every error as file:line:col and exits 1 if any.")
        {
            directory,
        };
        command.SetAction(parseResult => PolicyTool.Lint(
            parseResult.GetValue(directory) ?? DefaultDirectory,
            parseResult.InvocationConfiguration.Output,
            parseResult.InvocationConfiguration.Error));
        return command;
    }

    private static Command CreateExplain()
    {
        var cert = new Option<string>("--cert") { Description = "Client certificate (PEM or DER); the first certificate in the file is used", Required = true };
        var connect = new Option<bool>("--connect") { Description = "Explain CONNECT" };
        var publish = new Option<string>("--publish") { Description = "Explain a PUBLISH to TOPIC", HelpName = "TOPIC" };
        var subscribe = new Option<string>("--subscribe") { Description = "Explain a SUBSCRIBE to FILTER", HelpName = "FILTER" };
        var receive = new Option<string>("--receive") { Description = "Explain delivery of a message on TOPIC", HelpName = "TOPIC" };
        var admin = new Option<bool>("--admin") { Description = "Explain access to the admin API" };
        var clientId = new Option<string>("--client-id") { Description = "Client id (default: the certificate's CN)" };
        var qos = new Option<int>("--qos") { Description = "QoS of the PUBLISH (0, 1, 2; default 0)" };
        var retain = new Option<bool>("--retain") { Description = "The PUBLISH is retained" };
        var directory = new Option<string>("--policy-dir")
        {
            Description = $"Policy directory (default {DefaultDirectory})",
            DefaultValueFactory = _ => DefaultDirectory,
        };

        var command = new Command("explain", "Print allow or deny for one request and the rule (file:line, id) that decided.");
        foreach (var option in new Option[] { cert, connect, publish, subscribe, receive, admin, clientId, qos, retain, directory })
        {
            command.Options.Add(option);
        }

        command.Validators.Add(result =>
        {
            int actions = (result.GetValue(connect) ? 1 : 0) + (result.GetValue(admin) ? 1 : 0)
                + (result.GetValue(publish) is null ? 0 : 1) + (result.GetValue(subscribe) is null ? 0 : 1)
                + (result.GetValue(receive) is null ? 0 : 1);
            if (actions != 1)
            {
                result.AddError("give exactly one of --connect, --publish TOPIC, --subscribe FILTER, --receive TOPIC, --admin");
            }

            if (result.GetValue(qos) is < 0 or > 2)
            {
                result.AddError("--qos must be 0, 1 or 2");
            }
        });

        command.SetAction(parseResult =>
        {
            PolicyAction action;
            string? topic = null;
            if (parseResult.GetValue(connect))
            {
                action = PolicyAction.Connect;
            }
            else if (parseResult.GetValue(admin))
            {
                action = PolicyAction.Admin;
            }
            else if (parseResult.GetValue(publish) is { } p)
            {
                action = PolicyAction.Publish;
                topic = p;
            }
            else if (parseResult.GetValue(subscribe) is { } s)
            {
                action = PolicyAction.Subscribe;
                topic = s;
            }
            else
            {
                action = PolicyAction.Receive;
                topic = parseResult.GetValue(receive);
            }

            return PolicyTool.Explain(
                new PolicyExplainRequest(
                    parseResult.GetValue(cert)!,
                    action,
                    topic,
                    parseResult.GetValue(clientId),
                    (MqttQos)parseResult.GetValue(qos),
                    parseResult.GetValue(retain),
                    parseResult.GetValue(directory) ?? DefaultDirectory),
                parseResult.InvocationConfiguration.Output,
                parseResult.InvocationConfiguration.Error);
        });
        return command;
    }

}
