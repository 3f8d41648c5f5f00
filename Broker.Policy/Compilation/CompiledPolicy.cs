using OmniBroker.Policy.Certificates;

namespace OmniBroker.Policy.Compilation;

[Flags]
internal enum PolicyActions
{
    None = 0,
    Connect = 1,
    Publish = 2,
    Subscribe = 4,
    Receive = 8,
    Admin = 16,
    Enroll = 32,
    Renew = 64,
    TopicActions = Publish | Subscribe | Receive,
}

internal static class PolicyActionNames
{
    public static PolicyActions ToFlag(this PolicyAction action) => action switch
    {
        PolicyAction.Connect => PolicyActions.Connect,
        PolicyAction.Publish => PolicyActions.Publish,
        PolicyAction.Subscribe => PolicyActions.Subscribe,
        PolicyAction.Receive => PolicyActions.Receive,
        PolicyAction.Admin => PolicyActions.Admin,
        PolicyAction.Enroll => PolicyActions.Enroll,
        PolicyAction.Renew => PolicyActions.Renew,
        _ => throw new ArgumentOutOfRangeException(nameof(action), action, null),
    };

    public static bool TryParse(string text, out PolicyAction action)
    {
        switch (text)
        {
            case "connect": action = PolicyAction.Connect; return true;
            case "publish": action = PolicyAction.Publish; return true;
            case "subscribe": action = PolicyAction.Subscribe; return true;
            case "receive": action = PolicyAction.Receive; return true;
            case "admin": action = PolicyAction.Admin; return true;
            case "enroll": action = PolicyAction.Enroll; return true;
            case "renew": action = PolicyAction.Renew; return true;
            default: action = default; return false;
        }
    }

    public static string Name(this PolicyAction action) => action switch
    {
        PolicyAction.Connect => "connect",
        PolicyAction.Publish => "publish",
        PolicyAction.Subscribe => "subscribe",
        PolicyAction.Receive => "receive",
        PolicyAction.Enroll => "enroll",
        PolicyAction.Renew => "renew",
        _ => "admin",
    };
}

/// <summary>One rule after validation: immutable, shared by every connection.</summary>
internal sealed class CompiledRule
{
    /// <summary>All six (QoS, retain) combinations; bit index is qos * 2 + (retain ? 1 : 0).</summary>
    public const int AllPublishCombinations = 0x3F;

    public required string Id { get; init; }

    public string? Description { get; init; }

    public required PolicyEffect Effect { get; init; }

    public required PolicyActions Actions { get; init; }

    public required Condition[] Conditions { get; init; }

    public required TopicTemplate[] Topics { get; init; }

    /// <summary>Enroll rules: conditions on the subject a CSR asks for (templates take the bootstrap certificate's values).</summary>
    public Condition[] Subject { get; init; } = [];

    /// <summary>Which (QoS, retain) combinations of a PUBLISH this rule speaks about.</summary>
    public int PublishMask { get; init; } = AllPublishCombinations;

    public required string File { get; init; }

    public required int Line { get; init; }

    /// <summary>Order of the rule in the whole policy (files sorted by path, then position): the first deny and
    /// the first allow that apply are the ones an explanation names.</summary>
    public required int Ordinal { get; init; }

    public PolicyRuleInfo Info => field ??= new PolicyRuleInfo(Id, Description, Effect, File, Line);

    public bool IsDeny => Effect == PolicyEffect.Deny;

    public bool AppliesTo(ClientAttributes attributes)
    {
        foreach (var condition in Conditions)
        {
            if (!condition.Evaluate(attributes, failClosed: IsDeny))
            {
                return false;
            }
        }

        return true;
    }

    public override string ToString() => Info.ToString();
}

/// <summary>An immutable, validated policy: swapped as a whole on reload, never modified.</summary>
internal sealed class CompiledPolicy
{
    public CompiledPolicy(
        string directory,
        PolicyVersion version,
        IReadOnlyList<string> files,
        CompiledRule[] rules,
        IReadOnlyDictionary<string, string> extensionAliases)
    {
        Directory = directory;
        Version = version;
        Files = files;
        Rules = rules;
        ExtensionAliases = extensionAliases;
        ConnectRules = [.. rules.Where(r => (r.Actions & PolicyActions.Connect) != 0)];
        AdminRules = [.. rules.Where(r => (r.Actions & PolicyActions.Admin) != 0)];
        TopicRules = [.. rules.Where(r => (r.Actions & PolicyActions.TopicActions) != 0)];
        EnrollRules = [.. rules.Where(r => (r.Actions & PolicyActions.Enroll) != 0)];
        RenewRules = [.. rules.Where(r => (r.Actions & PolicyActions.Renew) != 0)];
    }

    public string Directory { get; }

    public PolicyVersion Version { get; }

    public IReadOnlyList<string> Files { get; }

    public CompiledRule[] Rules { get; }

    public IReadOnlyDictionary<string, string> ExtensionAliases { get; }

    public CompiledRule[] ConnectRules { get; }

    public CompiledRule[] AdminRules { get; }

    public CompiledRule[] TopicRules { get; }

    public CompiledRule[] EnrollRules { get; }

    public CompiledRule[] RenewRules { get; }

    public CompiledRule[] RulesFor(PolicyActions action) => action switch
    {
        PolicyActions.Connect => ConnectRules,
        PolicyActions.Admin => AdminRules,
        PolicyActions.Enroll => EnrollRules,
        PolicyActions.Renew => RenewRules,
        _ => TopicRules,
    };
}
