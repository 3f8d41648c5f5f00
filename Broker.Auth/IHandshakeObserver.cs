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

    void OnHandshakeFailed(CertificateFailureReason reason, TimeSpan duration);
}
