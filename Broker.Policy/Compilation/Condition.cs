using OmniBroker.Policy.Certificates;

namespace OmniBroker.Policy.Compilation;

internal enum ConditionOp
{
    /// <summary>equals / anyOf: some value of the attribute equals some listed value.</summary>
    In,
    Prefix,
    Glob,
    Present,
    Absent,
}

/// <summary>
/// A test of one attribute. Multi-valued attributes (OU, SAN entries) satisfy In/Prefix/Glob when any value does.
/// Values may contain templates (substituted per client): in an allow rule an unusable substitution simply
/// matches nothing, in a deny rule it makes the condition hold, so a certificate with odd fields can never slip
/// out from under a deny.
/// </summary>
internal sealed class Condition
{
    public Condition(AttributeRef attribute, ConditionOp op, Template[] values, GlobPattern[] globs, string text)
    {
        Attribute = attribute;
        Op = op;
        Values = values;
        Globs = globs;
        Text = text;
    }

    public AttributeRef Attribute { get; }

    public ConditionOp Op { get; }

    /// <summary>Literal values are already normalised (hex upper case, IP canonical form).</summary>
    public Template[] Values { get; }

    public GlobPattern[] Globs { get; }

    /// <summary>Human-readable form for explanations, e.g. "cert.ou equals sensors".</summary>
    public string Text { get; }

    public bool Evaluate(ClientAttributes attributes, bool failClosed) => Evaluate(attributes, attributes, failClosed);

    /// <summary>Tests <paramref name="actualSource"/>'s values with templates expanded from <paramref name="templateSource"/>
    /// (enroll rules: the subject asked for, against the bootstrap certificate's fields). Fails closed.</summary>
    public bool EvaluateAgainst(ClientAttributes actualSource, ClientAttributes templateSource) =>
        Evaluate(actualSource, templateSource, failClosed: false);

    private bool Evaluate(ClientAttributes actualSource, ClientAttributes attributes, bool failClosed)
    {
        var actual = actualSource.Get(Attribute);
        switch (Op)
        {
            case ConditionOp.Present:
                return actual.Length > 0;
            case ConditionOp.Absent:
                return actual.Length == 0;
        }

        if (actual.Length == 0)
        {
            return false;
        }

        var comparison = AttributeCatalog.Comparison(Attribute.Kind);
        if (Op == ConditionOp.Glob)
        {
            foreach (var glob in Globs)
            {
                foreach (var value in actual)
                {
                    if (glob.IsMatch(value, comparison))
                    {
                        return true;
                    }
                }
            }

            return false;
        }

        List<string>? scratch = null;
        foreach (var template in Values)
        {
            if (!template.HasVariables)
            {
                if (Compare(actual, template.Source, comparison))
                {
                    return true;
                }

                continue;
            }

            scratch ??= [];
            scratch.Clear();
            if (!template.Expand(attributes, SubstitutionTarget.Condition, atTopicStart: false, scratch) && failClosed)
            {
                return true;
            }

            foreach (var candidate in scratch)
            {
                var expected = AttributeCatalog.IsHex(Attribute.Kind)
                    ? AttributeCatalog.NormalizeHex(candidate, stripLeadingZeroBytes: Op == ConditionOp.In && Attribute.Kind == AttributeKind.Serial)
                    : candidate;
                if (expected is not null && Compare(actual, expected, comparison))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private bool Compare(string[] actual, string expected, StringComparison comparison)
    {
        foreach (var value in actual)
        {
            if (Op == ConditionOp.In ? string.Equals(value, expected, comparison) : value.StartsWith(expected, comparison))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => Text;
}

/// <summary>Shell-style pattern: '*' any run of characters (including none), '?' one character; no escapes.</summary>
internal sealed class GlobPattern
{
    public GlobPattern(string pattern) => Pattern = pattern;

    public string Pattern { get; }

    public bool IsMatch(string text, StringComparison comparison)
    {
        var p = Pattern.AsSpan();
        var t = text.AsSpan();
        int pi = 0, ti = 0, starP = -1, starT = 0;
        while (ti < t.Length)
        {
            if (pi < p.Length && p[pi] == '*')
            {
                starP = pi++;
                starT = ti;
            }
            else if (pi < p.Length && (p[pi] == '?' || p.Slice(pi, 1).Equals(t.Slice(ti, 1), comparison)))
            {
                pi++;
                ti++;
            }
            else if (starP >= 0)
            {
                pi = starP + 1;
                ti = ++starT;
            }
            else
            {
                return false;
            }
        }

        while (pi < p.Length && p[pi] == '*')
        {
            pi++;
        }

        return pi == p.Length;
    }

    public override string ToString() => Pattern;
}
