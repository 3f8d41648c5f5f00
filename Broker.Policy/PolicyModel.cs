namespace OmniBroker.Policy;

/// <summary>What a client asks to do. <see cref="Admin"/> is not an MQTT action: the admin API asks it.</summary>
public enum PolicyAction
{
    Connect,
    Publish,
    Subscribe,
    Receive,
    Admin,

    /// <summary>Initial enrollment over EST with a bootstrap certificate; the rule's <c>subject</c> constrains the
    /// subject the CSR may ask for.</summary>
    Enroll,

    /// <summary>Renewal of the client's own certificate (EST simplereenroll, MQTT $omnibroker/certificates/renew).</summary>
    Renew,
}

public enum PolicyEffect
{
    Allow,
    Deny,
}

/// <summary>One problem in a policy file. Line and column are 1-based; 0 when the problem has no position
/// (a missing directory, an unreadable file).</summary>
public sealed record PolicyError(string File, int Line, int Column, string Message)
{
    public override string ToString() =>
        Line > 0 ? $"{File}:{Line}:{Column}: error: {Message}" : $"{File}: error: {Message}";
}

/// <summary>Identifies a loaded policy: <see cref="Generation"/> counts successful loads in this process,
/// <see cref="ContentHash"/> is a SHA-256 over the file names and contents (hex, 16 chars), so two hosts
/// running the same files report the same hash.</summary>
public sealed record PolicyVersion(long Generation, string ContentHash)
{
    public override string ToString() => $"{Generation}-{ContentHash}";
}

/// <summary>Where a rule is written, for explanations and logs.</summary>
public sealed record PolicyRuleInfo(string Id, string? Description, PolicyEffect Effect, string File, int Line)
{
    public override string ToString() => $"{File}:{Line} rule '{Id}'";
}

/// <summary>The answer to "may this client do that", with the rule that decided. <see cref="DecidingRule"/> is
/// null when no rule allowed (default deny); <see cref="MatchedFilter"/> is the substituted filter of the deciding
/// rule for topic actions; <see cref="Detail"/> says why a request was refused before any rule was consulted
/// (an invalid topic).</summary>
public sealed record PolicyDecision(bool Allowed, PolicyRuleInfo? DecidingRule, string? MatchedFilter = null, string? Detail = null)
{
    /// <summary>Every rule that matched the request, deciding rule included, in policy order.</summary>
    public IReadOnlyList<PolicyRuleInfo> MatchingRules { get; init; } = [];

    /// <summary>Granted subscribe only: the subscribe denies the filter is wider than. The subscription is granted,
    /// but messages on topics matching these filters are not delivered to it.</summary>
    public IReadOnlyList<WithheldTopics> NotDelivered { get; init; } = [];

    public string Explanation => DecidingRule is null
        ? Detail ?? "no rule allows: default deny"
        : $"{(Allowed ? "allowed" : "denied")} by {DecidingRule}{(MatchedFilter is null ? "" : $" (filter {MatchedFilter})")}"
            + string.Concat(NotDelivered.Select(w => $"; {w}"));

    public override string ToString() => $"{(Allowed ? "allow" : "deny")}: {Explanation}";
}

/// <summary>Topics a granted subscription does not deliver: those matching <see cref="Filter"/>, the substituted
/// filter of the subscribe deny <see cref="Rule"/>.</summary>
public sealed record WithheldTopics(string Filter, PolicyRuleInfo Rule)
{
    public override string ToString() => $"messages on topics matching {Filter} ({Rule}) will not be delivered";
}

/// <summary>A question for <see cref="PolicyAuthorizer.Explain"/>: <see cref="Topic"/> is the topic (publish,
/// receive) or filter (subscribe); <see cref="Qos"/> and <see cref="Retain"/> matter for publish only.</summary>
public sealed record PolicyQuery(
    System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate,
    string? ClientId,
    PolicyAction Action,
    string? Topic = null,
    OmniBroker.Mqtt.Packets.MqttQos Qos = OmniBroker.Mqtt.Packets.MqttQos.AtMostOnce,
    bool Retain = false);

/// <summary>A policy that failed to load or validate. <see cref="Errors"/> holds every error found, with file
/// and line; the message lists them all.</summary>
public sealed class PolicyLoadException : Exception
{
    public PolicyLoadException(string directory, IReadOnlyList<PolicyError> errors)
        : base(FormatMessage(directory, errors))
    {
        Directory = directory;
        Errors = errors;
    }

    public string Directory { get; }

    public IReadOnlyList<PolicyError> Errors { get; }

    private static string FormatMessage(string directory, IReadOnlyList<PolicyError> errors) =>
        $"The policy in '{directory}' is invalid ({errors.Count} error{(errors.Count == 1 ? "" : "s")}):"
        + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  " + e));
}
