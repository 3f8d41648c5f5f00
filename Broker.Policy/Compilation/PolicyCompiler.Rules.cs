using System.Net;
using System.Text.RegularExpressions;
using OmniBroker.Policy.Certificates;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OmniBroker.Policy.Compilation;

/// <summary>Pass 2: one rule (keys, effect, actions, topics, QoS, retain) into a <see cref="CompiledRule"/>.</summary>
internal static partial class PolicyCompiler
{
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
}
