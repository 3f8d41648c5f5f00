using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Policy;

/// <summary>A question for <see cref="PolicyTool.Explain"/>: the device certificate file (PEM or DER; the first
/// certificate is used), the action, its topic or filter, and the policy directory. A null
/// <see cref="ClientId"/> means the certificate's CN.</summary>
public sealed record PolicyExplainRequest(
    string CertificatePath, PolicyAction Action, string? Topic, string? ClientId, MqttQos Qos, bool Retain, string PolicyDirectory);

/// <summary>
/// What <c>omnibroker policy lint</c> and <c>policy explain</c> print, so platform teams can check policy files
/// before shipping them. The host parses the command line; this reports. Exit codes: lint 0 valid, 1 invalid;
/// explain 0 allow, 1 deny, 2 bad certificate or policy.
/// </summary>
public static class PolicyTool
{
    public const int ExitOk = 0;
    public const int ExitDenied = 1;
    public const int ExitInvalid = 1;
    public const int ExitBadInput = 2;

    /// <summary>Validates every policy file in <paramref name="directory"/>: prints every error as file:line:col
    /// to <paramref name="error"/> and returns <see cref="ExitInvalid"/>, or a summary and <see cref="ExitOk"/>.</summary>
    public static int Lint(string directory, TextWriter output, TextWriter error)
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

    /// <summary>Prints allow or deny for <paramref name="request"/> and the rule (file:line, id) that decided.
    /// Returns <see cref="ExitOk"/> (allow), <see cref="ExitDenied"/>, or <see cref="ExitBadInput"/> (unreadable
    /// certificate, invalid policy).</summary>
    public static int Explain(PolicyExplainRequest request, TextWriter output, TextWriter error)
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
