using System.Text;
using OmniBroker.Policy.Certificates;

namespace OmniBroker.Policy.Compilation;

internal enum LevelKind
{
    Literal,
    SingleWildcard,
    MultiWildcard,
    Template,
}

internal readonly record struct TopicLevel(LevelKind Kind, string? Literal, Template? Template);

/// <summary>
/// A topic filter in a rule, possibly with variables ("devices/${cert.cn}/telemetry"). Substituted once per
/// connection at CONNECT. An allow drops any substitution that uses an unsafe value (see
/// <see cref="Template.IsSafe"/>); a deny turns a level it cannot substitute safely into '+', so it covers at
/// least what it was meant to.
/// </summary>
internal sealed class TopicTemplate
{
    private const int MaxTopicBytes = 65535;

    private TopicTemplate(string source, TopicLevel[] levels)
    {
        Source = source;
        Levels = levels;
        HasVariables = levels.Any(l => l.Kind == LevelKind.Template);
    }

    public string Source { get; }

    public TopicLevel[] Levels { get; }

    public bool HasVariables { get; }

    public static TopicTemplate? Parse(string text, IReadOnlyDictionary<string, string> aliases, List<string> errors)
    {
        int before = errors.Count;
        if (text.Length == 0)
        {
            errors.Add("a topic must not be empty");
            return null;
        }

        if (Encoding.UTF8.GetByteCount(text) > MaxTopicBytes)
        {
            errors.Add($"topic '{text[..32]}...' is longer than {MaxTopicBytes} bytes");
            return null;
        }

        if (text.Contains('\0'))
        {
            errors.Add("a topic must not contain NUL");
            return null;
        }

        if (text.StartsWith("$share/", StringComparison.Ordinal))
        {
            errors.Add($"topic '{text}': write the filter without '$share/<group>/'; rights on a filter also apply to shared subscriptions of it");
            return null;
        }

        var parts = text.Split('/');
        var levels = new TopicLevel[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var part = parts[i];
            if (part is "+")
            {
                levels[i] = new TopicLevel(LevelKind.SingleWildcard, part, null);
            }
            else if (part is "#")
            {
                if (i != parts.Length - 1)
                {
                    errors.Add($"topic '{text}': '#' must be the last level");
                }

                levels[i] = new TopicLevel(LevelKind.MultiWildcard, part, null);
            }
            else if (part.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                errors.Add($"topic '{text}': '+' and '#' must occupy a whole level (level '{part}')");
            }
            else if (Template.ContainsVariable(part))
            {
                var template = Template.Parse(part, aliases, errors);
                if (template is not null)
                {
                    levels[i] = new TopicLevel(LevelKind.Template, null, template);
                }
            }
            else
            {
                levels[i] = new TopicLevel(LevelKind.Literal, part, null);
            }
        }

        return errors.Count == before ? new TopicTemplate(text, levels) : null;
    }

    /// <summary>Appends the concrete filters for one client.</summary>
    public void Expand(ClientAttributes attributes, bool deny, List<string> output)
    {
        if (!HasVariables)
        {
            output.Add(Source);
            return;
        }

        var perLevel = new List<string>[Levels.Length];
        long product = 1;
        for (int i = 0; i < Levels.Length; i++)
        {
            var level = Levels[i];
            var values = new List<string>(1);
            if (level.Kind != LevelKind.Template)
            {
                values.Add(level.Literal!);
            }
            else
            {
                bool complete = level.Template!.Expand(attributes, SubstitutionTarget.Topic, atTopicStart: i == 0, values);
                if (!complete && deny)
                {
                    values.Clear();
                    values.Add("+");
                }
                else if (values.Count == 0)
                {
                    return;
                }
            }

            perLevel[i] = values;
            product *= values.Count;
        }

        if (product > Template.MaxExpansions)
        {
            if (!deny)
            {
                return;
            }

            for (int i = 0; i < Levels.Length; i++)
            {
                if (Levels[i].Kind == LevelKind.Template)
                {
                    perLevel[i] = ["+"];
                }
            }
        }

        var builder = new StringBuilder();
        Emit(perLevel, 0, builder, output);
    }

    private static void Emit(List<string>[] perLevel, int index, StringBuilder prefix, List<string> output)
    {
        int mark = prefix.Length;
        foreach (var value in perLevel[index])
        {
            prefix.Length = mark;
            if (index > 0)
            {
                prefix.Append('/');
            }

            prefix.Append(value);
            if (index == perLevel.Length - 1)
            {
                output.Add(prefix.ToString());
            }
            else
            {
                Emit(perLevel, index + 1, prefix, output);
            }
        }

        prefix.Length = mark;
    }

    public override string ToString() => Source;
}
