using System.Diagnostics;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;
using OmniBroker.Policy.Matching;

namespace OmniBroker.Policy;

/// <summary>
/// Decisions against one compiled policy. Connect and admin are decided from the rule list (once per
/// connection / request); topic actions from the per-connection <see cref="ClientGrants"/>, and explanations
/// walk the very same matchers with rule tracking on, so an explanation can never disagree with enforcement.
/// </summary>
internal static class PolicyEvaluator
{
    public static ConnectDecision AuthorizeConnect(CompiledPolicy policy, MqttClientInfo client)
    {
        var attributes = ClientAttributes.From(client.Certificate, client.ClientId);
        var (allowed, rule) = Decide(policy, attributes, PolicyActions.Connect, null);
        if (!allowed)
        {
            return ConnectDecision.Deny(rule is null ? "no rule allows connect: default deny" : $"connect denied by {rule}");
        }

        return new ConnectDecision(true, ClientGrants.Resolve(policy, attributes), $"connect allowed by {rule}");
    }

    /// <summary>Connect or admin: the first applicable deny decides, else the first applicable allow, else deny.</summary>
    public static (bool Allowed, CompiledRule? Rule) Decide(
        CompiledPolicy policy, ClientAttributes attributes, PolicyActions action, List<CompiledRule>? matching)
    {
        CompiledRule? allow = null;
        CompiledRule? deny = null;
        foreach (var rule in policy.RulesFor(action))
        {
            if (!rule.AppliesTo(attributes))
            {
                continue;
            }

            matching?.Add(rule);
            if (rule.IsDeny)
            {
                deny ??= rule;
                if (matching is null)
                {
                    break;
                }
            }
            else
            {
                allow ??= rule;
            }
        }

        return deny is not null ? (false, deny) : (allow is not null, allow);
    }

    public static PolicyDecision Explain(CompiledPolicy policy, PolicyQuery query)
    {
        var attributes = ClientAttributes.From(query.Certificate, query.ClientId);
        if (query.Action is PolicyAction.Connect or PolicyAction.Admin or PolicyAction.Enroll or PolicyAction.Renew)
        {
            var matching = new List<CompiledRule>();
            var (allowed, rule) = Decide(policy, attributes, query.Action.ToFlag(), matching);
            return new PolicyDecision(allowed, rule?.Info) { MatchingRules = [.. matching.Select(r => r.Info)] };
        }

        var topic = query.Topic ?? throw new ArgumentException($"{query.Action.Name()} needs a topic", nameof(query));
        var grants = ClientGrants.Resolve(policy, attributes, trackRules: true);
        var trace = new List<Contribution>();
        if (query.Action == PolicyAction.Subscribe)
        {
            if (!MqttTopic.IsValidTopicFilter(topic))
            {
                return new PolicyDecision(false, null, Detail: $"'{topic}' is not a valid topic filter");
            }

            bool allowed = grants.DecideSubscribe(topic, trace, out var firstDeny, out var firstAllow);
            Debug.Assert(allowed == grants.CanSubscribe(topic));

            var decider = firstDeny ?? (allowed ? firstAllow : null);
            var withheld = allowed ? grants.WithheldFrom(topic) : [];
            trace.AddRange(withheld.Select(w => new Contribution(w.Rule, w.Filter, 0)));
            return new PolicyDecision(allowed, decider?.Info, FilterOf(trace, decider))
            {
                MatchingRules = Rules(trace),
                NotDelivered = [.. withheld.OrderBy(w => w.Rule.Ordinal).Select(w => new WithheldTopics(w.Filter, w.Rule.Info))],
            };
        }

        if (!MqttTopic.IsValidTopicName(topic))
        {
            return new PolicyDecision(false, null, Detail: $"'{topic}' is not a valid topic name (empty, or contains '+', '#' or NUL)");
        }

        grants.TraceTopic(topic, trace);
        int allowBit;
        int denyBit;
        bool result;
        if (query.Action == PolicyAction.Publish)
        {
            int bit = ((int)query.Qos << 1) | (query.Retain ? 1 : 0);
            allowBit = 1 << (TopicTrie.PublishAllowShift + bit);
            denyBit = 1 << (TopicTrie.PublishDenyShift + bit);
            result = grants.CanPublish(topic, query.Qos, query.Retain);
        }
        else
        {
            allowBit = TopicTrie.ReceiveAllow;
            // A subscribe deny withholds its topics from wider subscriptions, so it denies receiving them too.
            denyBit = TopicTrie.ReceiveDeny | TopicTrie.SubscribeDeny;
            result = grants.CanReceive(topic);
        }

        Contribution? deny = First(trace, denyBit);
        Contribution? allow = First(trace, allowBit);
        var relevant = trace.Where(c => (c.Flags & (allowBit | denyBit)) != 0).ToList();
        Debug.Assert(result == (deny is null && allow is not null));
        var deciding = deny ?? allow;
        return new PolicyDecision(result, deciding?.Rule.Info, deciding?.Filter) { MatchingRules = Rules(relevant) };
    }

    private static Contribution? First(List<Contribution> trace, int bit)
    {
        Contribution? best = null;
        foreach (var c in trace)
        {
            if ((c.Flags & bit) != 0 && (best is null || c.Rule.Ordinal < best.Value.Rule.Ordinal))
            {
                best = c;
            }
        }

        return best;
    }

    private static string? FilterOf(List<Contribution> trace, CompiledRule? rule) =>
        rule is null ? null : trace.First(c => c.Rule == rule).Filter;

    private static PolicyRuleInfo[] Rules(List<Contribution> trace) =>
        [.. trace.Select(c => c.Rule).Distinct().OrderBy(r => r.Ordinal).Select(r => r.Info)];
}
