namespace OmniBroker.Auth;

/// <summary>
/// Optional hook (register any number in DI) told about every authentication outcome on the MQTT listener:
/// metrics plug in here. <c>duration</c> runs from the accepted TCP connection to the decision (TLS handshake,
/// chain validation and revocation check). Called on the connection's thread: implementations must be cheap and
/// must not throw.
/// </summary>
public interface IHandshakeObserver
{
    void OnHandshakeSucceeded(TimeSpan duration);

    /// <summary>A client admitted although its revocation status was unknown (soft-fail). Counted apart so that a
    /// soft-fail admission does not show as a plain success; by default it is one.</summary>
    void OnHandshakeAdmittedSoftFail(TimeSpan duration) => OnHandshakeSucceeded(duration);

    void OnHandshakeFailed(CertificateFailureReason reason, TimeSpan duration);
}
