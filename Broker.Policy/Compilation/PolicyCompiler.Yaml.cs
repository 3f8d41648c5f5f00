using System.Net;
using System.Text.RegularExpressions;
using OmniBroker.Policy.Certificates;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OmniBroker.Policy.Compilation;

/// <summary>YAML scalar helpers, error positions and the patterns the compiler checks names against.</summary>
internal static partial class PolicyCompiler
{
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
