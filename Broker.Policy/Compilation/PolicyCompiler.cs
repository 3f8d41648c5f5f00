using System.Net;
using System.Text.RegularExpressions;
using OmniBroker.Policy.Certificates;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OmniBroker.Policy.Compilation;

/// <summary>One policy file's text and the path it is reported under.</summary>
internal sealed record PolicySource(string Path, string Text);

/// <summary>
/// Turns policy files (YAML, format in docs/policies.md) into a <see cref="CompiledPolicy"/>. Every file is
/// parsed, every rule checked, and all errors are collected with file, line and column before anything is
/// rejected, so one lint run shows everything to fix. Pass 1 reads the extension aliases of all files (aliases
/// are global), pass 2 compiles the rules.
/// </summary>
internal static partial class PolicyCompiler
{
    private static readonly string[] s_topLevelKeys = ["version", "extensions", "rules"];
    private static readonly string[] s_ruleKeys =
        ["id", "description", "effect", "actions", "action", "match", "clientId", "topics", "topic", "qos", "maxQos", "retain", "subject"];

    private static readonly string[] s_conditionOps = ["equals", "anyOf", "prefix", "glob", "present", "absent"];

    public static CompiledPolicy? Compile(
        IReadOnlyList<PolicySource> sources,
        string directory,
        PolicyVersion version,
        List<PolicyError> errors)
    {
        var documents = new List<(PolicySource Source, YamlMappingNode Root)>();
        foreach (var source in sources)
        {
            if (!YamlText.IsPrintable(source.Text, out int badLine, out int badColumn, out int codePoint))
            {
                errors.Add(new PolicyError(source.Path, badLine, badColumn,
                    $"invalid YAML: character U+{codePoint:X4} is not allowed in a YAML file (a binary or wrongly encoded file?)"));
                continue;
            }

            var stream = new YamlStream();
            var parser = new Parser(new StringReader(source.Text));
            try
            {
                stream.Load(parser);
            }
            catch (YamlException ex)
            {
                errors.Add(new PolicyError(source.Path, (int)ex.Start.Line, (int)ex.Start.Column, YamlMessage(ex)));
                continue;
            }
            catch (InvalidOperationException)
            {
                // YamlDotNet's scanner fails this way on some malformed flow collections; report where parsing stopped.
                var mark = parser.Current?.End ?? Mark.Empty;
                errors.Add(new PolicyError(source.Path, (int)mark.Line, (int)mark.Column, "invalid YAML: malformed content after this point (an unclosed '[' or '{'?)"));
                continue;
            }
            catch (ArgumentException)
            {
                // YamlDotNet's loader fails this way on an event it does not expect where a node should start, e.g. a
                // mapping entry with an empty key under another key (" : x", found by fuzzing, docs/fuzzing.md).
                var mark = parser.Current?.Start ?? Mark.Empty;
                errors.Add(new PolicyError(source.Path, (int)mark.Line, (int)mark.Column, "invalid YAML: a node was expected here (a key without a name, or a stray ':'?)"));
                continue;
            }

            foreach (var document in stream.Documents)
            {
                var root = document.RootNode;
                if (root is YamlScalarNode { Value: null or "" or "~" or "null" })
                {
                    continue; // empty document
                }

                if (root is not YamlMappingNode mapping)
                {
                    errors.Add(At(source.Path, root, "a policy file must be a mapping with 'rules:' (and optionally 'version:' and 'extensions:')"));
                    continue;
                }

                documents.Add((source, mapping));
            }
        }

        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        var aliasOrigins = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (source, root) in documents)
        {
            ReadExtensions(source.Path, root, aliases, aliasOrigins, errors);
        }

        var rules = new List<CompiledRule>();
        var ids = new Dictionary<string, CompiledRule>(StringComparer.Ordinal);
        foreach (var (source, root) in documents)
        {
            foreach (var (keyNode, value) in root.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value;
                switch (key)
                {
                    case "version":
                        if (ScalarText(value) != "1")
                        {
                            errors.Add(At(source.Path, value, "unsupported policy format version: only 'version: 1' is known"));
                        }

                        break;
                    case "extensions":
                        break;
                    case "rules":
                        if (value is YamlScalarNode { Value: null or "" or "~" or "null" })
                        {
                            break;
                        }

                        if (value is not YamlSequenceNode sequence)
                        {
                            errors.Add(At(source.Path, value, "'rules' must be a list of rules"));
                            break;
                        }

                        foreach (var ruleNode in sequence.Children)
                        {
                            var rule = CompileRule(source.Path, ruleNode, aliases, rules.Count, errors);
                            if (rule is null)
                            {
                                continue;
                            }

                            if (ids.TryGetValue(rule.Id, out var first))
                            {
                                errors.Add(At(source.Path, ruleNode, $"duplicate rule id '{rule.Id}' (first defined at {first.File}:{first.Line})"));
                                continue;
                            }

                            ids[rule.Id] = rule;
                            rules.Add(rule);
                        }

                        break;
                    default:
                        errors.Add(At(source.Path, keyNode, $"unknown top-level key '{key}'; expected one of: {string.Join(", ", s_topLevelKeys)}"));
                        break;
                }
            }
        }

        if (errors.Count > 0)
        {
            return null;
        }

        return new CompiledPolicy(directory, version, [.. sources.Select(s => s.Path)], [.. rules], aliases);
    }

    private static void ReadExtensions(
        string path,
        YamlMappingNode root,
        Dictionary<string, string> aliases,
        Dictionary<string, string> origins,
        List<PolicyError> errors)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode("extensions"), out var node))
        {
            return;
        }

        if (node is not YamlMappingNode mapping)
        {
            errors.Add(At(path, node, "'extensions' must map an alias to an OID, e.g. 'deviceType: 1.3.6.1.4.1.59999.1.1'"));
            return;
        }

        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var alias = (keyNode as YamlScalarNode)?.Value;
            var oid = ScalarText(valueNode);
            if (alias is null || !AliasRegex().IsMatch(alias))
            {
                errors.Add(At(path, keyNode, $"invalid extension alias '{alias}': use letters, digits, '_' or '-', starting with a letter"));
                continue;
            }

            if (oid is null || !OidRegex().IsMatch(oid))
            {
                errors.Add(At(path, valueNode, $"extension '{alias}': '{oid}' is not a dotted OID such as 1.3.6.1.4.1.59999.1.1"));
                continue;
            }

            if (aliases.TryGetValue(alias, out var existing))
            {
                if (existing != oid)
                {
                    errors.Add(At(path, valueNode, $"extension alias '{alias}' is {oid} here but {existing} at {origins[alias]}"));
                }

                continue;
            }

            aliases[alias] = oid;
            origins[alias] = $"{path}:{keyNode.Start.Line}";
        }
    }

    private static CompiledRule? CompileRule(
        string path,
        YamlNode node,
        IReadOnlyDictionary<string, string> aliases,
        int ordinal,
        List<PolicyError> errors)
    {
        if (node is not YamlMappingNode rule)
        {
            errors.Add(At(path, node, "a rule must be a mapping with at least 'id', 'effect' and 'actions'"));
            return null;
        }

        int before = errors.Count;
        string? id = null;
        string? description = null;
        PolicyEffect? effect = null;
        var actions = PolicyActions.None;
        YamlNode? actionsNode = null;
        var conditions = new List<Condition>();
        Condition? clientIdCondition = null;
        var topics = new List<TopicTemplate>();
        YamlNode? topicsNode = null;
        int? qosMask = null;
        YamlNode? qosNode = null;
        bool? retain = null;
        YamlNode? retainNode = null;
        var subject = new List<Condition>();
        YamlNode? subjectNode = null;

        foreach (var (keyNode, value) in rule.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value;
            switch (key)
            {
                case "id":
                    id = ScalarText(value);
                    if (id is null || !IdRegex().IsMatch(id))
                    {
                        errors.Add(At(path, value, $"invalid rule id '{id}': use letters, digits, '.', '_', '-' or ':'"));
                        id = null;
                    }

                    break;
                case "description":
                    description = ScalarText(value);
                    break;
                case "effect":
                    switch (ScalarText(value))
                    {
                        case "allow": effect = PolicyEffect.Allow; break;
                        case "deny": effect = PolicyEffect.Deny; break;
                        default:
                            errors.Add(At(path, value, $"effect must be 'allow' or 'deny', not '{ScalarText(value)}'"));
                            break;
                    }

                    break;
                case "actions":
                case "action":
                    if (actionsNode is not null)
                    {
                        errors.Add(At(path, keyNode, "give either 'actions' or 'action', not both"));
                    }

                    actionsNode = value;
                    foreach (var item in ScalarList(path, value, "actions", errors))
                    {
                        if (PolicyActionNames.TryParse(item.Text, out var action))
                        {
                            actions |= action.ToFlag();
                        }
                        else
                        {
                            errors.Add(At(path, item.Node, $"unknown action '{item.Text}'; expected connect, publish, subscribe, receive, admin, enroll or renew"));
                        }
                    }

                    break;
                case "match":
                    if (value is YamlScalarNode { Value: null or "" or "~" or "null" })
                    {
                        break; // "match:" with nothing: every client
                    }

                    if (value is not YamlMappingNode match)
                    {
                        errors.Add(At(path, value, "'match' must map attribute names to conditions, e.g. 'cert.ou: sensors'"));
                        break;
                    }

                    foreach (var (attributeNode, conditionNode) in match.Children)
                    {
                        var name = (attributeNode as YamlScalarNode)?.Value ?? "";
                        if (name == "client.id")
                        {
                            errors.Add(At(path, attributeNode, "test the client id with the rule's 'clientId:' key, not inside 'match'"));
                            continue;
                        }

                        if (!AttributeCatalog.TryResolve(name, aliases, out var attribute, out var error))
                        {
                            errors.Add(At(path, attributeNode, error));
                            continue;
                        }

                        var condition = CompileCondition(path, attribute, conditionNode, aliases, errors);
                        if (condition is not null)
                        {
                            conditions.Add(condition);
                        }
                    }

                    break;
                case "clientId":
                    clientIdCondition = CompileCondition(
                        path, new AttributeRef(AttributeKind.ClientId, "client.id"), value, aliases, errors);
                    break;
                case "topics":
                case "topic":
                    if (topicsNode is not null)
                    {
                        errors.Add(At(path, keyNode, "give either 'topics' or 'topic', not both"));
                    }

                    topicsNode = value;
                    foreach (var item in ScalarList(path, value, "topics", errors))
                    {
                        var messages = new List<string>();
                        var template = TopicTemplate.Parse(item.Text, aliases, messages);
                        if (template is null)
                        {
                            foreach (var message in messages)
                            {
                                errors.Add(At(path, item.Node, message));
                            }
                        }
                        else
                        {
                            topics.Add(template);
                        }
                    }

                    break;
                case "qos":
                case "maxQos":
                    if (qosNode is not null)
                    {
                        errors.Add(At(path, keyNode, "give either 'qos' or 'maxQos', not both"));
                    }

                    qosNode = value;
                    if (key == "maxQos")
                    {
                        if (TryQos(ScalarText(value), out int max))
                        {
                            qosMask = (1 << (max + 1)) - 1;
                        }
                        else
                        {
                            errors.Add(At(path, value, $"maxQos must be 0, 1 or 2, not '{ScalarText(value)}'"));
                        }

                        break;
                    }

                    qosMask = 0;
                    foreach (var item in ScalarList(path, value, "qos", errors))
                    {
                        if (TryQos(item.Text, out int q))
                        {
                            qosMask |= 1 << q;
                        }
                        else
                        {
                            errors.Add(At(path, item.Node, $"qos must be 0, 1 or 2, not '{item.Text}'"));
                        }
                    }

                    break;
                case "subject":
                    subjectNode = value;
                    CompileSubject(path, value, aliases, subject, errors);
                    break;
                case "retain":
                    retainNode = value;
                    retain = ScalarText(value) switch
                    {
                        "true" => true,
                        "false" => false,
                        _ => null,
                    };
                    if (retain is null)
                    {
                        errors.Add(At(path, value, $"retain must be true or false, not '{ScalarText(value)}'"));
                    }

                    break;
                default:
                    errors.Add(At(path, keyNode, $"unknown key '{key}' in rule; expected one of: {string.Join(", ", s_ruleKeys)}"));
                    break;
            }
        }

        if (id is null && !rule.Children.ContainsKey(new YamlScalarNode("id")))
        {
            errors.Add(At(path, rule, "rule has no 'id': every rule needs a unique id, used in explanations and logs"));
        }

        if (effect is null && !rule.Children.ContainsKey(new YamlScalarNode("effect")))
        {
            errors.Add(At(path, rule, $"rule '{id}' has no 'effect' (allow or deny)"));
        }

        if (actionsNode is null)
        {
            errors.Add(At(path, rule, $"rule '{id}' has no 'actions' (connect, publish, subscribe, receive, admin)"));
        }

        bool topicAction = (actions & PolicyActions.TopicActions) != 0;
        if (topicAction && topicsNode is null)
        {
            errors.Add(At(path, rule, $"rule '{id}' grants publish/subscribe/receive but has no 'topics'"));
        }
        else if (!topicAction && topicsNode is not null && actionsNode is not null)
        {
            errors.Add(At(path, topicsNode, $"rule '{id}': 'topics' only applies to publish, subscribe and receive"));
        }

        if ((actions & PolicyActions.Publish) == 0 && actionsNode is not null)
        {
            if (qosNode is not null)
            {
                errors.Add(At(path, qosNode, $"rule '{id}': qos conditions only apply to publish"));
            }

            if (retainNode is not null)
            {
                errors.Add(At(path, retainNode, $"rule '{id}': retain conditions only apply to publish"));
            }
        }

        if (subjectNode is not null && (actions & PolicyActions.Enroll) == 0 && actionsNode is not null)
        {
            errors.Add(At(path, subjectNode, $"rule '{id}': 'subject' only applies to enroll"));
        }
        else if (subjectNode is null && (actions & PolicyActions.Enroll) != 0 && effect == PolicyEffect.Allow)
        {
            // Without it a bootstrap certificate could ask for any identity, the admin's included.
            errors.Add(At(path, rule, $"rule '{id}' allows enroll but has no 'subject' saying which subject a CSR may ask for"));
        }

        if (qosMask == 0 && qosNode is not null && errors.Count == before)
        {
            errors.Add(At(path, qosNode, $"rule '{id}': the qos list is empty"));
        }

        if (errors.Count != before || id is null || effect is null)
        {
            return null;
        }

        if (clientIdCondition is not null)
        {
            conditions.Add(clientIdCondition);
        }

        return new CompiledRule
        {
            Id = id,
            Description = description,
            Effect = effect.Value,
            Actions = actions,
            Conditions = [.. conditions],
            Topics = [.. topics],
            Subject = [.. subject],
            PublishMask = PublishMask(qosMask ?? 0b111, retain),
            File = path,
            Line = (int)rule.Start.Line,
            Ordinal = ordinal,
        };
    }

    private static int PublishMask(int qosMask, bool? retain)
    {
        int mask = 0;
        for (int q = 0; q <= 2; q++)
        {
            if ((qosMask & (1 << q)) == 0)
            {
                continue;
            }

            if (retain != true)
            {
                mask |= 1 << (q * 2);
            }

            if (retain != false)
            {
                mask |= 1 << (q * 2 + 1);
            }
        }

        return mask;
    }

    // subject: { cert.cn: ${cert.cn}, cert.o: Acme, cert.ou: { anyOf: [sensors, gateways] }, cert.ext.deviceType: ... }
    private static void CompileSubject(string path, YamlNode node, IReadOnlyDictionary<string, string> aliases, List<Condition> subject, List<PolicyError> errors)
    {
        if (node is not YamlMappingNode mapping || mapping.Children.Count == 0)
        {
            errors.Add(At(path, node, "'subject' must map subject attributes to conditions, e.g. 'cert.cn: ${cert.cn}'"));
            return;
        }

        foreach (var (attributeNode, conditionNode) in mapping.Children)
        {
            var name = (attributeNode as YamlScalarNode)?.Value ?? "";
            if (!AttributeCatalog.TryResolve(name, aliases, out var attribute, out var error))
            {
                errors.Add(At(path, attributeNode, error));
                continue;
            }

            if (!EnrollmentSubject.IsRequestable(attribute.Kind))
            {
                errors.Add(At(path, attributeNode, $"'{name}' cannot be asked for in a CSR; use cert.cn, cert.o, cert.ou, cert.c, cert.st, cert.l, cert.san.uri, cert.san.dns or cert.ext.<alias>"));
                continue;
            }

            var condition = CompileCondition(path, attribute, conditionNode, aliases, errors);
            if (condition is not null)
            {
                subject.Add(condition);
            }
        }
    }

    private static Condition? CompileCondition(
        string path,
        AttributeRef attribute,
        YamlNode node,
        IReadOnlyDictionary<string, string> aliases,
        List<PolicyError> errors)
    {
        ConditionOp op;
        YamlNode valuesNode;
        string opName;
        switch (node)
        {
            case YamlScalarNode:
                op = ConditionOp.In;
                opName = "equals";
                valuesNode = node;
                break;
            case YamlSequenceNode:
                op = ConditionOp.In;
                opName = "anyOf";
                valuesNode = node;
                break;
            case YamlMappingNode mapping when mapping.Children.Count == 1:
                var (opNode, operand) = mapping.Children.First();
                opName = (opNode as YamlScalarNode)?.Value ?? "";
                switch (opName)
                {
                    case "equals":
                    case "anyOf":
                        op = ConditionOp.In;
                        break;
                    case "prefix":
                        op = ConditionOp.Prefix;
                        break;
                    case "glob":
                        op = ConditionOp.Glob;
                        break;
                    case "present":
                    case "absent":
                        var flag = ScalarText(operand);
                        if (flag is not ("true" or "false"))
                        {
                            errors.Add(At(path, operand, $"{opName} must be true or false, not '{flag}'"));
                            return null;
                        }

                        bool present = (opName == "present") == (flag == "true");
                        return new Condition(
                            attribute,
                            present ? ConditionOp.Present : ConditionOp.Absent,
                            [],
                            [],
                            $"{attribute.Name} {(present ? "present" : "absent")}");
                    default:
                        errors.Add(At(path, opNode, $"unknown condition '{opName}' on {attribute.Name}; expected one of: {string.Join(", ", s_conditionOps)}"));
                        return null;
                }

                valuesNode = operand;
                if (opName == "equals" && valuesNode is not YamlScalarNode)
                {
                    errors.Add(At(path, valuesNode, "'equals' takes one value; use 'anyOf' for a list"));
                    return null;
                }

                break;
            default:
                errors.Add(At(path, node, $"condition on {attribute.Name} must be a value, a list of values, or a mapping with one of: {string.Join(", ", s_conditionOps)}"));
                return null;
        }

        int before = errors.Count;
        var items = ScalarList(path, valuesNode, opName, errors);
        var templates = new List<Template>();
        var globs = new List<GlobPattern>();
        foreach (var item in items)
        {
            var text = item.Text;
            if (op == ConditionOp.Glob)
            {
                if (Template.ContainsVariable(text))
                {
                    errors.Add(At(path, item.Node, "glob patterns cannot contain variables; use equals or prefix with a variable"));
                    continue;
                }

                globs.Add(new GlobPattern(AttributeCatalog.IsHex(attribute.Kind) ? text.ToUpperInvariant().Replace(":", "", StringComparison.Ordinal) : text));
                continue;
            }

            if (!Template.ContainsVariable(text))
            {
                if (AttributeCatalog.IsHex(attribute.Kind))
                {
                    var hex = AttributeCatalog.NormalizeHex(text, stripLeadingZeroBytes: op == ConditionOp.In && attribute.Kind == AttributeKind.Serial);
                    if (hex is null)
                    {
                        errors.Add(At(path, item.Node, $"{attribute.Name}: '{text}' is not hexadecimal"));
                        continue;
                    }

                    if (attribute.Kind == AttributeKind.Fingerprint && op == ConditionOp.In && hex.Length != 64)
                    {
                        errors.Add(At(path, item.Node, $"{attribute.Name}: a SHA-256 fingerprint has 64 hex digits, '{text}' has {hex.Length}"));
                        continue;
                    }

                    text = hex;
                }
                else if (attribute.Kind == AttributeKind.SanIp && op == ConditionOp.In)
                {
                    if (!IPAddress.TryParse(text, out var ip))
                    {
                        errors.Add(At(path, item.Node, $"{attribute.Name}: '{text}' is not an IP address"));
                        continue;
                    }

                    text = ip.ToString();
                }
            }

            var messages = new List<string>();
            var template = Template.Parse(text, aliases, messages);
            foreach (var message in messages)
            {
                errors.Add(At(path, item.Node, message));
            }

            if (template is not null)
            {
                templates.Add(template);
            }
        }

        if (errors.Count != before)
        {
            return null;
        }

        if (templates.Count == 0 && globs.Count == 0)
        {
            errors.Add(At(path, valuesNode, $"condition on {attribute.Name} lists no values"));
            return null;
        }

        var shown = string.Join(", ", items.Select(i => i.Text));
        return new Condition(attribute, op, [.. templates], [.. globs], $"{attribute.Name} {opName} {shown}");
    }

    private readonly record struct ScalarItem(string Text, YamlNode Node);

    /// <summary>A scalar or a list of scalars; empty values are errors.</summary>
    private static List<ScalarItem> ScalarList(string path, YamlNode node, string what, List<PolicyError> errors)
    {
        var items = new List<ScalarItem>();
        IEnumerable<YamlNode> nodes = node is YamlSequenceNode sequence ? sequence.Children : [node];
        foreach (var item in nodes)
        {
            if (item is not YamlScalarNode)
            {
                errors.Add(At(path, item, $"'{what}' takes plain values; a nested list or mapping is not allowed here"));
                continue;
            }

            var text = ScalarText(item);
            if (string.IsNullOrEmpty(text))
            {
                errors.Add(At(path, item, $"'{what}' has an empty value"));
                continue;
            }

            items.Add(new ScalarItem(text, item));
        }

        if (node is YamlSequenceNode { Children.Count: 0 })
        {
            errors.Add(At(path, node, $"'{what}' is an empty list"));
        }

        return items;
    }

    private static bool TryQos(string? text, out int qos)
    {
        qos = text switch { "0" => 0, "1" => 1, "2" => 2, _ => -1 };
        return qos >= 0;
    }

    /// <summary>Scalar text; a plain null ('~', 'null' or nothing) is null.</summary>
    private static string? ScalarText(YamlNode node)
    {
        if (node is not YamlScalarNode scalar)
        {
            return null;
        }

        if (scalar.Style == ScalarStyle.Plain && scalar.Value is null or "" or "~" or "null" or "Null" or "NULL")
        {
            return null;
        }

        return scalar.Value;
    }

    private static PolicyError At(string path, YamlNode node, string message) =>
        new(path, (int)node.Start.Line, (int)node.Start.Column, message);

    /// <summary>YamlDotNet prefixes its messages with "(Line: .., Col: .., Idx: ..) - (..): ", which we report apart.</summary>
    private static string YamlMessage(YamlException ex)
    {
        var message = ex.Message;
        var match = YamlLocationRegex().Match(message);
        message = match.Success ? message[match.Length..] : message;
        if (message.StartsWith("Duplicate key", StringComparison.Ordinal))
        {
            message = $"duplicate key '{message["Duplicate key".Length..].Trim()}' in mapping";
        }

        return "invalid YAML: " + message;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
    private static partial Regex IdRegex();

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_\-]*$")]
    private static partial Regex AliasRegex();

    [GeneratedRegex(@"^[0-2](\.(0|[1-9][0-9]*))+$")]
    private static partial Regex OidRegex();

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex YamlLocationRegex();
}
