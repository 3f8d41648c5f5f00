using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;
using OmniBroker.Policy.Diagnostics;

namespace OmniBroker.Policy;

public enum PolicyReloadStatus
{
    /// <summary>A new, valid policy was swapped in and <see cref="PolicyAuthorizer.PolicyChanged"/> raised.</summary>
    Applied,

    /// <summary>The files hash to the policy in force; nothing changed.</summary>
    Unchanged,

    /// <summary>The files are invalid; the last good policy stays in force.</summary>
    Rejected,
}

/// <summary>Outcome of <see cref="PolicyAuthorizer.Reload"/>: <see cref="Version"/> is the policy in force afterwards.</summary>
public sealed record PolicyReloadResult(PolicyReloadStatus Status, PolicyVersion Version, IReadOnlyList<PolicyError> Errors);

/// <summary>
/// The broker's <see cref="IMqttAuthorizer"/>: answers from an immutable compiled policy that reloads swap
/// atomically, so a decision in flight always sees one whole policy. An invalid reload is rejected with every
/// error logged and the last good policy kept.
/// </summary>
public sealed class PolicyAuthorizer : IMqttAuthorizer
{
    private readonly ILogger _logger;
    private readonly PolicyMetrics? _metrics;
    private readonly Lock _reloadLock = new();
    private CompiledPolicy _current;
    private long _generation;

    private PolicyAuthorizer(CompiledPolicy initial, string directory, ILogger logger, PolicyMetrics? metrics)
    {
        _metrics = metrics;
        _current = initial;
        _generation = initial.Version.Generation;
        Directory = directory;
        _logger = logger;
        _metrics?.Observe(this);
    }

    /// <summary>Raised after a new policy is in force; the engine re-resolves the grants of connected clients.</summary>
    public event Action? PolicyChanged;

    public string Directory { get; }

    public PolicyVersion Version => Current.Version;

    public int RuleCount => Current.Rules.Length;

    public int FileCount => Current.Files.Count;

    internal CompiledPolicy Current => Volatile.Read(ref _current);

    /// <summary>Loads and compiles <paramref name="directory"/>; throws <see cref="PolicyLoadException"/> listing every
    /// error when it is invalid (the broker must not start without a valid policy).</summary>
    public static PolicyAuthorizer Load(string directory, ILogger<PolicyAuthorizer>? logger = null, PolicyMetrics? metrics = null)
    {
        var log = (ILogger?)logger ?? NullLogger.Instance;
        var result = PolicyLoader.LoadDirectory(directory, generation: 1);
        if (result.Policy is null)
        {
            foreach (var error in result.Errors)
            {
                PolicyLog.PolicyError(log, error.ToString());
            }

            throw new PolicyLoadException(directory, result.Errors);
        }

        PolicyLog.PolicyLoaded(log, result.Policy.Version.ToString(), directory, result.FileCount, result.Policy.Rules.Length);
        return new PolicyAuthorizer(result.Policy, directory, log, metrics);
    }

    public ConnectDecision AuthorizeConnect(MqttClientInfo client) => PolicyEvaluator.AuthorizeConnect(Current, client);

    /// <summary>May the holder of <paramref name="certificate"/> do a non-topic action (admin, connect)?
    /// For connect, pass the client id when rules bind it.</summary>
    public bool IsAllowed(X509Certificate2? certificate, PolicyAction action, string? clientId = null)
    {
        if (action is not (PolicyAction.Admin or PolicyAction.Connect or PolicyAction.Renew))
        {
            throw new ArgumentException($"'{action.Name()}' needs a topic: use Explain", nameof(action));
        }

        var attributes = ClientAttributes.From(certificate, clientId);
        return PolicyEvaluator.Decide(Current, attributes, action.ToFlag(), null).Allowed;
    }

    /// <summary><c>IsAllowed(cert, "admin")</c>: the action by its policy-file name.</summary>
    public bool IsAllowed(X509Certificate2? certificate, string action) =>
        PolicyActionNames.TryParse(action, out var parsed)
            ? IsAllowed(certificate, parsed)
            : throw new ArgumentException($"unknown action '{action}'", nameof(action));

    /// <summary>May the holder of the bootstrap certificate enroll for <paramref name="requested"/> (action enroll)?
    /// Deny wins; an allow rule must constrain every attribute the request asks for.</summary>
    public PolicyDecision AuthorizeEnroll(X509Certificate2 bootstrap, EnrollmentSubject requested) =>
        EnrollmentSubject.Decide(Current, bootstrap, requested);

    /// <summary>The decision for any action, with the rule that decided (for the CLI and the admin API).</summary>
    public PolicyDecision Explain(PolicyQuery query) => PolicyEvaluator.Explain(Current, query);

    /// <summary>Reloads the directory; safe to call from any thread (reloads are serialised).</summary>
    public PolicyReloadResult Reload(string trigger = "manual")
    {
        PolicyReloadResult outcome;
        lock (_reloadLock)
        {
            var old = Current;
            var result = PolicyLoader.LoadDirectory(Directory, _generation + 1);
            if (result.Policy is null)
            {
                PolicyLog.PolicyReloadRejected(_logger, trigger, result.Errors.Count, old.Version.ToString());
                foreach (var error in result.Errors)
                {
                    PolicyLog.PolicyError(_logger, error.ToString());
                }

                _metrics?.Reloaded(ok: false);
                return new PolicyReloadResult(PolicyReloadStatus.Rejected, old.Version, result.Errors);
            }

            if (result.ContentHash == old.Version.ContentHash)
            {
                PolicyLog.PolicyUnchanged(_logger, trigger, old.Version.ToString());
                _metrics?.Reloaded(ok: true);
                return new PolicyReloadResult(PolicyReloadStatus.Unchanged, old.Version, []);
            }

            _generation++;
            Interlocked.Exchange(ref _current, result.Policy);
            PolicyLog.PolicyApplied(_logger, result.Policy.Version.ToString(), trigger, old.Version.ToString(), result.FileCount, result.Policy.Rules.Length);
            _metrics?.Reloaded(ok: true);
            outcome = new PolicyReloadResult(PolicyReloadStatus.Applied, result.Policy.Version, []);
        }

        RaisePolicyChanged();
        return outcome;
    }

    private void RaisePolicyChanged()
    {
        var handlers = PolicyChanged;
        if (handlers is null)
        {
            return;
        }

        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((Action)handler)();
            }
            catch (Exception ex)
            {
                // One failing subscriber must not keep the others from re-resolving grants.
                PolicyLog.PolicyChangedHandlerFailed(_logger, ex);
            }
        }
    }
}
