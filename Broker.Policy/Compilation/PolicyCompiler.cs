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
}
