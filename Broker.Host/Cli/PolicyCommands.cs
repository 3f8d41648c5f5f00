using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Host.Cli;

/// <summary>
/// <c>omnibroker policy lint [DIR]</c> and <c>omnibroker policy explain --cert DEVICE.pem (--connect | --publish TOPIC |
/// --subscribe FILTER | --receive TOPIC | --admin) ...</c>: let platform teams check policy files before shipping them.
/// Exit codes: lint 0 valid, 1 invalid; explain 0 allow, 1 deny, 2 bad arguments/certificate/policy.
/// </summary>
internal static class PolicyCommands
{
    public const int ExitOk = 0;
    public const int ExitDenied = 1;
    public const int ExitInvalid = 1;
    public const int ExitBadInput = 2;

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
        command.SetAction(parseResult => Lint(
            parseResult.GetValue(directory) ?? DefaultDirectory,
            parseResult.InvocationConfiguration.Output,
            parseResult.InvocationConfiguration.Error));
        return command;
    }

    internal static int Lint(string directory, TextWriter output, TextWriter error)
    {
        var result = PolicyLoader.LoadDirectory(directory);
        if (result.Policy is null)
        {
            foreach (var e in result.Errors)
            {
                error.WriteLine(e.ToString());
            }

            error.WriteLine($"{result.Errors.Count} error{(result.Errors.Count == 1 ? "" : "s")} in {directory}");
            return ExitInvalid;
        }

        var policy = result.Policy;
        output.WriteLine($"OK: {policy.Files.Count} file{(policy.Files.Count == 1 ? "" : "s")}, {policy.Rules.Length} rules, version {policy.Version.ContentHash}");
        return ExitOk;
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

            return Explain(
                new ExplainRequest(
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

    internal sealed record ExplainRequest(
        string CertificatePath, PolicyAction Action, string? Topic, string? ClientId, MqttQos Qos, bool Retain, string PolicyDirectory);

    internal static int Explain(ExplainRequest request, TextWriter output, TextWriter error)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = LoadCertificate(request.CertificatePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            error.WriteLine($"omnibroker: cannot read certificate {request.CertificatePath}: {ex.Message}");
            return ExitBadInput;
        }

        using (certificate)
        {
            var result = PolicyLoader.LoadDirectory(request.PolicyDirectory);
            if (result.Policy is null)
            {
                foreach (var e in result.Errors)
                {
                    error.WriteLine(e.ToString());
                }

                error.WriteLine($"omnibroker: the policy in {request.PolicyDirectory} is invalid ({result.Errors.Count} errors); run 'omnibroker policy lint'");
                return ExitBadInput;
            }

            var policy = result.Policy;
            var defaultedClientId = request.ClientId is null;
            var clientId = request.ClientId ?? CommonName(certificate);
            var decision = PolicyEvaluator.Explain(
                policy, new PolicyQuery(certificate, clientId, request.Action, request.Topic, request.Qos, request.Retain));

            var what = request.Action switch
            {
                PolicyAction.Publish => $"publish {request.Topic} (qos {(int)request.Qos}, retain {(request.Retain ? "true" : "false")})",
                PolicyAction.Subscribe => $"subscribe {request.Topic}",
                PolicyAction.Receive => $"receive {request.Topic}",
                PolicyAction.Connect => "connect",
                _ => "admin",
            };
            output.WriteLine($"{(decision.Allowed ? "allow" : "deny")} {what}");
            output.WriteLine($"  client:     {certificate.Subject}");
            output.WriteLine($"  client id:  {clientId}{(defaultedClientId ? " (the certificate's CN; pass --client-id to change)" : "")}");
            if (decision.DecidingRule is { } rule)
            {
                output.WriteLine($"  decided by: {rule.File}:{rule.Line} rule '{rule.Id}' ({(rule.Effect == PolicyEffect.Deny ? "explicit deny" : "allow")})"
                    + (decision.MatchedFilter is null ? "" : $", filter {decision.MatchedFilter}"));
                if (rule.Description is { } description)
                {
                    output.WriteLine($"              {description}");
                }
            }
            else
            {
                output.WriteLine($"  decided by: {decision.Explanation}");
            }

            foreach (var withheld in decision.NotDelivered)
            {
                output.WriteLine($"  granted; messages on topics matching {withheld.Filter} will not be delivered "
                    + $"({withheld.Rule.File}:{withheld.Rule.Line} rule '{withheld.Rule.Id}', explicit deny)");
            }

            foreach (var other in decision.MatchingRules)
            {
                if (other != decision.DecidingRule && !decision.NotDelivered.Any(w => w.Rule == other))
                {
                    output.WriteLine($"  also matched: {other.File}:{other.Line} rule '{other.Id}' ({(other.Effect == PolicyEffect.Deny ? "deny" : "allow")})");
                }
            }

            if (request.Action is not (PolicyAction.Connect or PolicyAction.Admin))
            {
                var connectDecision = PolicyEvaluator.Explain(policy, new PolicyQuery(certificate, clientId, PolicyAction.Connect));
                if (!connectDecision.Allowed)
                {
                    output.WriteLine($"  note: this client cannot connect with this client id ({connectDecision.Explanation})");
                }
            }

            output.WriteLine($"  policy:     {request.PolicyDirectory} ({policy.Files.Count} files, {policy.Rules.Length} rules, version {policy.Version.ContentHash})");
            return decision.Allowed ? ExitOk : ExitDenied;
        }
    }

    private static string CommonName(X509Certificate2 certificate) =>
        ClientAttributes.From(certificate, null).Get(new AttributeRef(AttributeKind.CommonName, "cert.cn")) is [var cn, ..] ? cn : "";

    private static X509Certificate2 LoadCertificate(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var text = System.Text.Encoding.ASCII.GetString(bytes);
        return text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
            ? X509Certificate2.CreateFromPem(text)
            : X509CertificateLoader.LoadCertificate(bytes);
    }
}
