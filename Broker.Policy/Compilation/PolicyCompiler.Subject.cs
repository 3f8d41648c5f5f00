using System.Net;
using System.Text.RegularExpressions;
using OmniBroker.Policy.Certificates;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OmniBroker.Policy.Compilation;

/// <summary>A rule's subject: conditions on certificate attributes.</summary>
internal static partial class PolicyCompiler
{
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
}
