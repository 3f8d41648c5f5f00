using System.Diagnostics;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OmniBroker.Auth;

/// <summary>
/// Decides whether a TLS connection may proceed to MQTT: chain errors are refused inside the TLS handshake
/// (the client gets an alert), revocation after it, in <see cref="ClientCertificateMiddleware"/>. Every refusal is
/// logged exactly once (event 2001) and reported to the <see cref="IHandshakeObserver"/>s.
/// </summary>
internal sealed class ClientCertificateAuthenticator
{
    private readonly ClientCertificateValidator _validator;
    private readonly ConnectedIdentityRegistry _registry;
    private readonly IRevocationChecker? _revocation;
    private readonly IHandshakeObserver[] _observers;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<MutualTlsOptions, HandshakeGate> _gates = new(ReferenceEqualityComparer.Instance);

    public ClientCertificateAuthenticator(
        ClientCertificateValidator validator,
        ConnectedIdentityRegistry registry,
        IRevocationChecker? revocation = null,
        IEnumerable<IHandshakeObserver>? observers = null,
        TimeProvider? timeProvider = null,
        ILogger<ClientCertificateAuthenticator>? logger = null)
    {
        _validator = validator;
        _registry = registry;
        _revocation = revocation;
        _observers = observers?.ToArray() ?? [];
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public ClientCertificateValidator Validator => _validator;

    public ConnectedIdentityRegistry Registry => _registry;

    internal HandshakeState BeginConnection(ConnectionContext connection)
    {
        var state = new HandshakeState(_time.GetTimestamp());
        connection.Features.Set(state);
        return state;
    }

    /// <summary>The handshake starts now (after the wait for the first byte and for a slot).</summary>
    internal void RestartClock(HandshakeState state) => state.StartTimestamp = _time.GetTimestamp();

    /// <summary>The clock of handshake durations and timeouts.</summary>
    internal TimeProvider Time => _time;

    /// <summary>The handshake slots shared by every listener using <paramref name="options"/>.</summary>
    internal HandshakeGate GetHandshakeGate(MutualTlsOptions options)
    {
        lock (_gates)
        {
            if (!_gates.TryGetValue(options, out var gate))
            {
                gate = new HandshakeGate(options.MaxConcurrentHandshakes, _logger, _time);
                _gates.Add(options, gate);
            }
            return gate;
        }
    }

    /// <summary>Called by <see cref="HandshakeTrackingMiddleware"/> when the connection ends: a connection that
    /// never reached a decision either never finished the handshake in time (timeout: idle or stalled peers, the
    /// handshake timer, the slot queue; each sets <see cref="HandshakeState.TimeoutDetail"/>) or failed in TLS itself
    /// (protocol mismatch, client gave up).</summary>
    internal void EndConnection(ConnectionContext connection, HandshakeState state)
    {
        if (!state.TryDecide())
        {
            return;
        }
        if (state.TimeoutDetail is { } detail)
        {
            Refuse(connection, state, CertificateFailureReason.Timeout, null, detail, exception: null, LogLevel.Information);
        }
        else
        {
            Refuse(connection, state, CertificateFailureReason.TlsError, null,
                "TLS handshake failed or was abandoned (Kestrel's debug log has the TLS error)", exception: null, LogLevel.Information);
        }
    }

    internal SslServerAuthenticationOptions CreateServerOptions(ConnectionContext connection, SslStreamCertificateContext serverCertificate, MutualTlsOptions options)
    {
        var state = connection.Features.Get<HandshakeState>() ?? BeginConnection(connection);
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = serverCertificate,
            ClientCertificateRequired = true,
            EnabledSslProtocols = options.EnabledProtocols,
            // With OpenSslServerTuning, "true" only makes .NET reuse one SSL_CTX for every connection: the callback below
            // turns tickets and the session cache off unless resumption was asked for.
            AllowTlsResume = options.AllowTlsResume || (options.OpenSslTuning && OpenSslServerTuning.IsAvailable),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            // SslStream builds a chain before calling back: make that build harmless (no AIA fetch of attacker-chosen URLs,
            // no system trust). Its ExtraStore then holds exactly the certificates the client sent.
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            },
            RemoteCertificateValidationCallback = (sender, certificate, chain, _) =>
            {
                if (options.OpenSslTuning && sender is SslStream stream)
                {
                    OpenSslServerTuning.Apply(stream, options.AllowTlsResume);
                }
                return OnRemoteCertificate(connection, state, certificate, chain);
            },
        };
    }

    private bool OnRemoteCertificate(ConnectionContext connection, HandshakeState state, X509Certificate? certificate, X509Chain? chain)
    {
        var leaf = certificate as X509Certificate2 ?? (certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        var result = _validator.Validate(leaf, chain?.ChainPolicy.ExtraStore);
        if (chain is not null)
        {
            // SslStream keeps its options, and with them this policy, for the life of the connection: free the copies of
            // the client's certificates it put into ExtraStore (each an OpenSSL X509 with a decoded key) now that the
            // validator is done with them (a cached result holds its own copies).
            foreach (var presented in chain.ChainPolicy.ExtraStore)
            {
                presented.Dispose();
            }
            chain.ChainPolicy.ExtraStore.Clear();
        }
        if (!result.IsValid)
        {
            if (state.TryDecide())
            {
                Refuse(connection, state, result.Reason, leaf, result.Detail, exception: null, LogLevel.Warning);
            }
            return false;
        }
        state.Validation = result;
        return true;
    }

    /// <summary>Runs after the TLS handshake: chain result (from the handshake, else validated now), revocation,
    /// then publishes the identity. Returns null when the connection was refused (already logged and aborted).</summary>
    internal async ValueTask<ClientIdentity?> AuthenticateAsync(ConnectionContext connection, X509Certificate2? clientCertificate)
    {
        var state = connection.Features.Get<HandshakeState>() ?? BeginConnection(connection);
        var result = state.Validation;
        if (result is null)
        {
            result = _validator.Validate(clientCertificate);
            if (!result.IsValid)
            {
                RefuseAndAbort(connection, state, result.Reason, clientCertificate, result.Detail, null);
                return null;
            }
        }

        bool softFail = false;
        if (_revocation is not null)
        {
            RevocationCheckResult revocation;
            try
            {
                revocation = await _revocation.CheckAsync(result.Chain, connection.ConnectionClosed).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
            {
                RefuseAndAbort(connection, state, CertificateFailureReason.RevocationUnknown, result.Chain[0], "the client closed the connection during the revocation check", null);
                return null;
            }
            catch (Exception ex)
            {
                // Fail closed: a broken checker must not admit certificates it could not check.
                RefuseAndAbort(connection, state, CertificateFailureReason.RevocationUnknown, result.Chain[0], $"revocation check failed: {ex.Message}", ex);
                return null;
            }
            if (!revocation.Admit)
            {
                var reason = revocation.Status == RevocationStatus.Revoked ? CertificateFailureReason.Revoked : CertificateFailureReason.RevocationUnknown;
                RefuseAndAbort(connection, state, reason, result.Chain[0], revocation.Detail, null);
                return null;
            }
            softFail = revocation.Status == RevocationStatus.Unknown;
        }

        if (!state.TryDecide())
        {
            return null;
        }
        var identity = new ClientIdentity(connection.ConnectionId, result.Chain, result.ValidUntil, connection.RemoteEndPoint, _time.GetUtcNow());
        var elapsed = _time.GetElapsedTime(state.StartTimestamp);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            AuthLog.ClientAuthenticated(_logger, identity.Certificate.SerialNumber, identity.Certificate.Subject, identity.Certificate.Issuer,
                connection.RemoteEndPoint?.ToString() ?? "-", elapsed.TotalMilliseconds);
        }
        foreach (var observer in _observers)
        {
            if (softFail)
            {
                observer.OnHandshakeAdmittedSoftFail(elapsed);
            }
            else
            {
                observer.OnHandshakeSucceeded(elapsed);
            }
        }
        return identity;
    }

    private void RefuseAndAbort(ConnectionContext connection, HandshakeState state, CertificateFailureReason reason, X509Certificate2? certificate, string detail, Exception? exception)
    {
        if (state.TryDecide())
        {
            Refuse(connection, state, reason, certificate, detail, exception, LogLevel.Warning);
        }
        connection.Abort(new ConnectionAbortedException($"client certificate refused: {reason.Label()}"));
    }

    private void Refuse(ConnectionContext connection, HandshakeState state, CertificateFailureReason reason, X509Certificate2? certificate, string detail, Exception? exception, LogLevel level)
    {
        state.FailureReason = reason;
        var elapsed = _time.GetElapsedTime(state.StartTimestamp);
        AuthLog.ConnectionRefused(_logger, level, exception, reason.Label(),
            certificate?.SerialNumber ?? "-", certificate?.Subject ?? "-", certificate?.Issuer ?? "-",
            connection.RemoteEndPoint?.ToString() ?? "-", detail);
        foreach (var observer in _observers)
        {
            observer.OnHandshakeFailed(reason, elapsed);
        }
    }
}

/// <summary>Per-connection authentication state, a connection feature shared by the TLS callback and the middlewares.</summary>
internal sealed class HandshakeState
{
    private int _decided;

    private SemaphoreSlim? _slot;

    public HandshakeState(long startTimestamp)
    {
        StartTimestamp = startTimestamp;
    }

    /// <summary>When the handshake started (restarted once the connection leaves the slot queue).</summary>
    public long StartTimestamp { get; set; }

    /// <summary>Set when the connection never finished its handshake in time: why (reason timeout).</summary>
    public string? TimeoutDetail { get; private set; }

    public void NeverFinished(string detail) => TimeoutDetail = detail;

    private int _handshake; // 0 running, 1 completed, 2 timed out

    private ITimer? _handshakeTimer;

    /// <summary>Holds the handshake timer until the handshake completes or the connection ends.</summary>
    public void ArmHandshakeTimer(ITimer timer) => _handshakeTimer = timer;

    public void DisarmHandshakeTimer() => Interlocked.Exchange(ref _handshakeTimer, null)?.Dispose();

    /// <summary>The TLS handshake finished (its timer is released). False when the handshake timer won the race (the
    /// connection is aborted).</summary>
    public bool TryCompleteHandshake()
    {
        DisarmHandshakeTimer();
        return Interlocked.CompareExchange(ref _handshake, 1, 0) == 0;
    }

    /// <summary>The handshake timer fired. False when the handshake had already finished.</summary>
    public bool TryTimeOutHandshake(string detail)
    {
        if (Interlocked.CompareExchange(ref _handshake, 2, 0) != 0)
        {
            return false;
        }
        TimeoutDetail = detail;
        return true;
    }

    public void HoldSlot(SemaphoreSlim slots) => _slot = slots;

    /// <summary>Gives the handshake slot back (once; later calls do nothing).</summary>
    public void ReleaseSlot() => Interlocked.Exchange(ref _slot, null)?.Release();

    /// <summary>Set by the TLS callback when the chain passed.</summary>
    public CertificateValidationResult? Validation { get; set; }

    public CertificateFailureReason FailureReason { get; set; }

    /// <summary>True for the first caller only: exactly one outcome is logged per connection.</summary>
    public bool TryDecide() => Interlocked.Exchange(ref _decided, 1) == 0;
}
