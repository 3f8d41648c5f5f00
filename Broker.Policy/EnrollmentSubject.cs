using System.Security.Cryptography.X509Certificates;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Policy;

/// <summary>
/// The identity a CSR asks for at initial enrollment, as attribute name → values ("cert.cn" → ["sensor-9"],
/// "cert.ext.1.3.6.1.4.1.59999.1.1" → ["temperature-sensor"]). Checked against the <c>subject</c> of enroll rules:
/// an allow rule must constrain every attribute asked for, and every value must satisfy its condition (templates
/// take the bootstrap certificate's values), so a CSR cannot slip in a second OU or an unconstrained SAN.
/// </summary>
public sealed class EnrollmentSubject
{
    private readonly Dictionary<string, string[]> _values = new(StringComparer.Ordinal);

    /// <summary>Adds values under a policy attribute name (cert.cn, cert.o, cert.ou, cert.c, cert.st, cert.l,
    /// cert.san.uri, cert.san.dns, cert.ext.&lt;oid&gt;).</summary>
    public EnrollmentSubject Add(string attribute, params string[] values)
    {
        if (values.Length == 0)
        {
            return this;
        }

        _values[attribute] = _values.TryGetValue(attribute, out var old) ? [.. old, .. values] : values;
        return this;
    }

    public IReadOnlyDictionary<string, string[]> Values => _values;

    internal static bool IsRequestable(AttributeKind kind) => kind is AttributeKind.CommonName or AttributeKind.Organization
        or AttributeKind.OrganizationalUnit or AttributeKind.Country or AttributeKind.State or AttributeKind.Locality
        or AttributeKind.SanUri or AttributeKind.SanDns or AttributeKind.Extension;

    internal static PolicyDecision Decide(CompiledPolicy policy, X509Certificate2 bootstrap, EnrollmentSubject requested)
    {
        var resolved = new List<KeyValuePair<AttributeRef, string[]>>();
        foreach (var (requestedName, values) in requested._values)
        {
            // Extensions are asked for by OID (cert.ext.1.3.6...): the policy names them by their alias.
            var name = requestedName;
            if (name.StartsWith(AttributeCatalog.ExtensionPrefix, StringComparison.Ordinal)
                && policy.ExtensionAliases.FirstOrDefault(p => p.Value == requestedName[AttributeCatalog.ExtensionPrefix.Length..]) is { Key: { } alias })
            {
                name = AttributeCatalog.ExtensionPrefix + alias;
            }

            if (!AttributeCatalog.TryResolve(name, policy.ExtensionAliases, out var attribute, out var error) || !IsRequestable(attribute.Kind))
            {
                return new PolicyDecision(false, null, Detail: $"the request asks for '{name}', which cannot be enrolled for{(error is null ? "" : ": " + error)}");
            }

            resolved.Add(new(attribute, values));
        }

        var asked = ClientAttributes.FromValues(resolved);
        var source = ClientAttributes.From(bootstrap, null);
        CompiledRule? allow = null;
        string? firstMismatch = null;
        foreach (var rule in policy.EnrollRules)
        {
            if (!rule.AppliesTo(source))
            {
                continue;
            }

            if (rule.IsDeny)
            {
                if (rule.Subject.Length == 0 || rule.Subject.All(c => Satisfied(c, asked, source)))
                {
                    return new PolicyDecision(false, rule.Info, Detail: $"enroll denied by {rule.Info}");
                }

                continue;
            }

            if (allow is not null)
            {
                continue;
            }

            var mismatch = Mismatch(rule, resolved, asked, source);
            if (mismatch is null)
            {
                allow = rule;
            }
            else
            {
                firstMismatch ??= $"{rule.Info}: {mismatch}";
            }
        }

        return allow is not null
            ? new PolicyDecision(true, allow.Info)
            : new PolicyDecision(false, null, Detail: firstMismatch ?? "no enroll rule applies to the bootstrap certificate: default deny");
    }

    private static string? Mismatch(CompiledRule rule, List<KeyValuePair<AttributeRef, string[]>> resolved, ClientAttributes asked, ClientAttributes source)
    {
        foreach (var (attribute, _) in resolved)
        {
            if (!rule.Subject.Any(c => c.Attribute == attribute))
            {
                return $"the subject may not contain {attribute.Name}";
            }
        }

        foreach (var condition in rule.Subject)
        {
            if (!Satisfied(condition, asked, source))
            {
                return $"the requested {condition.Attribute.Name} ({string.Join(", ", asked.Get(condition.Attribute))}) does not satisfy '{condition.Text}'";
            }
        }

        return null;
    }

    // Every value asked for must satisfy the condition on its own (a condition on a certificate holds when ANY value
    // does); an attribute that is not asked for satisfies only 'absent'.
    private static bool Satisfied(Condition condition, ClientAttributes asked, ClientAttributes source)
    {
        var values = asked.Get(condition.Attribute);
        if (condition.Op == ConditionOp.Absent)
        {
            return values.Length == 0;
        }

        if (values.Length == 0)
        {
            return false;
        }

        if (condition.Op == ConditionOp.Present)
        {
            return true;
        }

        foreach (var value in values)
        {
            var single = ClientAttributes.FromValues([new(condition.Attribute, [value])]);
            if (!condition.EvaluateAgainst(single, source))
            {
                return false;
            }
        }

        return true;
    }
}
