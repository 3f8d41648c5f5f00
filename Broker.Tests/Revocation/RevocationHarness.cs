using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Revocation;

/// <summary>The real revocation parts (checker, CRL store, OCSP cache/client, monitor) with captured logs.</summary>
internal sealed class RevocationHarness : IDisposable
{
    private readonly ILoggerFactory _loggers;

    public RevocationHarness(Action<RevocationOptions>? configure = null, TimeProvider? time = null, TestRegistry? registry = null)
    {
        Options = new RevocationOptions
        {
            OcspTimeout = TimeSpan.FromSeconds(3),
            CrlTimeout = TimeSpan.FromSeconds(3),
            OcspFailureBackoff = TimeSpan.Zero,
        };
        configure?.Invoke(Options);
        Logs = new CapturingLoggerProvider();
        _loggers = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        Registry = registry ?? new TestRegistry();
        Runtime = new RevocationRuntime(Options, _loggers, time, registry: Registry);
    }

    public RevocationOptions Options { get; }

    public CapturingLoggerProvider Logs { get; }

    public TestRegistry Registry { get; }

    public RevocationRuntime Runtime { get; }

    public RevocationChecker Checker => Runtime.Checker;

    public RevocationMetrics Metrics => Runtime.Metrics;

    public Task<RevocationCheckResult> CheckAsync(IReadOnlyList<X509Certificate2> chain) =>
        Checker.CheckAsync(chain, CancellationToken.None).AsTask();

    public string LogText => string.Join("\n", Logs.Entries.Select(e => e.ToString()));

    public void Dispose()
    {
        Runtime.Dispose();
        _loggers.Dispose();
    }
}

internal sealed class TestConnectedIdentity(IReadOnlyList<X509Certificate2> chain) : ConnectedIdentity
{
    private string? _reason;

    public override IReadOnlyList<X509Certificate2> Chain => chain;

    public string? RevokedReason => Volatile.Read(ref _reason);

    public override void Revoke(string reason) => Interlocked.CompareExchange(ref _reason, reason, null);
}

internal sealed class TestRegistry : IConnectedIdentityRegistry
{
    private readonly List<ConnectedIdentity> _identities = [];

    public TestConnectedIdentity Add(IReadOnlyList<X509Certificate2> chain)
    {
        TestConnectedIdentity identity = new(chain);
        lock (_identities)
        {
            _identities.Add(identity);
        }

        return identity;
    }

    public IReadOnlyCollection<ConnectedIdentity> Snapshot()
    {
        lock (_identities)
        {
            return _identities.ToArray();
        }
    }
}
