using System.Text;
using OmniBroker.Policy.Certificates;

namespace OmniBroker.Policy.Compilation;

/// <summary>Where a substituted value ends up: in a topic (strict) or in a condition value (non-empty only).</summary>
internal enum SubstitutionTarget
{
    Condition,
    Topic,
}

/// <summary>One piece of a template: literal text or a variable reference.</summary>
internal readonly record struct TemplatePart(string? Literal, AttributeRef Variable)
{
    public bool IsVariable => Literal is null;
}

/// <summary>
/// Text with <c>${name}</c> variables, parsed and resolved at load, substituted at CONNECT. A variable with
/// several values (a certificate with two OUs) yields one result per value; several multi-valued variables
/// yield their product, capped at <see cref="MaxExpansions"/>.
/// </summary>
internal sealed class Template
{
    public const int MaxExpansions = 256;

    private Template(string source, TemplatePart[] parts)
    {
        Source = source;
        Parts = parts;
        HasVariables = parts.Any(p => p.IsVariable);
    }

    public string Source { get; }

    public TemplatePart[] Parts { get; }

    public bool HasVariables { get; }

    public static bool ContainsVariable(string text) => text.Contains("${", StringComparison.Ordinal);

    /// <summary>Parses <paramref name="text"/>; a '$' not followed by '{' is literal (so "$SYS" needs no escaping).</summary>
    public static Template? Parse(string text, IReadOnlyDictionary<string, string> aliases, List<string> errors)
    {
        var parts = new List<TemplatePart>();
        var literal = new StringBuilder();
        int i = 0;
        bool ok = true;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                int end = text.IndexOf('}', i + 2);
                if (end < 0)
                {
                    errors.Add($"unterminated variable in '{text}': expected '}}' after '${{'");
                    return null;
                }

                var name = text[(i + 2)..end].Trim();
                if (AttributeCatalog.TryResolve(name, aliases, out var attribute, out var error))
                {
                    if (literal.Length > 0)
                    {
                        parts.Add(new TemplatePart(literal.ToString(), default));
                        literal.Clear();
                    }

                    parts.Add(new TemplatePart(null, attribute));
                }
                else
                {
                    errors.Add($"in '{text}': {error}");
                    ok = false;
                }

                i = end + 1;
                continue;
            }

            literal.Append(text[i]);
            i++;
        }

        if (literal.Length > 0 || parts.Count == 0)
        {
            parts.Add(new TemplatePart(literal.ToString(), default));
        }

        return ok ? new Template(text, [.. parts]) : null;
    }

    /// <summary>
    /// Appends every substitution to <paramref name="output"/>. Returns false when some value could not be used
    /// (absent, empty, or unsafe for <paramref name="target"/>); the results that could be built are still appended,
    /// each made only of safe values.
    /// </summary>
    public bool Expand(ClientAttributes attributes, SubstitutionTarget target, bool atTopicStart, List<string> output)
    {
        if (!HasVariables)
        {
            output.Add(Parts[0].Literal!);
            return true;
        }

        bool complete = true;
        var prefixes = new List<string> { "" };
        for (int p = 0; p < Parts.Length; p++)
        {
            var part = Parts[p];
            if (!part.IsVariable)
            {
                for (int j = 0; j < prefixes.Count; j++)
                {
                    prefixes[j] += part.Literal;
                }

                continue;
            }

            var values = attributes.Get(part.Variable);
            var next = new List<string>(prefixes.Count * Math.Max(1, values.Length));
            foreach (var value in values)
            {
                if (!IsSafe(value, target, atTopicStart && p == 0))
                {
                    complete = false;
                    continue;
                }

                foreach (var prefix in prefixes)
                {
                    if (next.Count == MaxExpansions)
                    {
                        complete = false;
                        break;
                    }

                    next.Add(prefix + value);
                }
            }

            if (next.Count == 0)
            {
                return false;
            }

            prefixes = next;
        }

        output.AddRange(prefixes);
        return complete;
    }

    /// <summary>The safe-substitution rule: a value that is empty, or in a topic contains a level separator, a
    /// wildcard or NUL, or would start a topic with '$', is never used; it could only widen a grant.</summary>
    internal static bool IsSafe(string value, SubstitutionTarget target, bool atTopicStart)
    {
        if (value.Length == 0)
        {
            return false;
        }

        if (target == SubstitutionTarget.Condition)
        {
            return true;
        }

        return value.AsSpan().IndexOfAny("/+#\0") < 0 && !(atTopicStart && value[0] == '$');
    }

    public override string ToString() => Source;
}
