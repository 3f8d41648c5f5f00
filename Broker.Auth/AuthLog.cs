using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth;

/// <summary>Log events of Broker.Auth. Event ids 2000-2099 are stable: dashboards and tests match on them.</summary>
internal static partial class AuthLog
{
    public const int ClientAuthenticatedId = 2000;
    public const int ConnectionRefusedId = 2001;
    public const int IdentityExpiredId = 2002;
    public const int TrustConfiguredId = 2010;
    public const int DevelopmentPkiCreatedId = 2020;
    public const int DevelopmentPkiLoadedId = 2021;
    public const int CertificateIssuedId = 2022;

    [LoggerMessage(EventId = ClientAuthenticatedId, EventName = "ClientAuthenticated", Level = LogLevel.Debug,
        Message = "Client certificate accepted: serial={Serial} subject={Subject} issuer={Issuer} remote={RemoteAddress} in {ElapsedMilliseconds:F1} ms")]
    public static partial void ClientAuthenticated(ILogger logger, string serial, string subject, string issuer, string remoteAddress, double elapsedMilliseconds);

    /// <summary>The one line written for every refused connection, whatever refused it.</summary>
    [LoggerMessage(EventId = ConnectionRefusedId, EventName = "ConnectionRefused",
        Message = "Connection refused ({Reason}): serial={Serial} subject={Subject} issuer={Issuer} remote={RemoteAddress}: {Detail}")]
    public static partial void ConnectionRefused(ILogger logger, LogLevel level, Exception? exception, string reason, string serial, string subject, string issuer, string remoteAddress, string detail);

    [LoggerMessage(EventId = IdentityExpiredId, EventName = "IdentityExpired", Level = LogLevel.Information,
        Message = "Client certificate chain expired while connected, disconnecting: serial={Serial} subject={Subject} validUntil={ValidUntil:u}")]
    public static partial void IdentityExpired(ILogger logger, string serial, string subject, DateTimeOffset validUntil);

    [LoggerMessage(EventId = TrustConfiguredId, EventName = "TrustConfigured", Level = LogLevel.Information,
        Message = "Client certificates must chain to {AnchorCount} trust anchor(s): {Anchors}; {IntermediateCount} configured intermediate(s)")]
    public static partial void TrustConfigured(ILogger logger, int anchorCount, string anchors, int intermediateCount);

    [LoggerMessage(EventId = DevelopmentPkiCreatedId, EventName = "DevelopmentPkiCreated", Level = LogLevel.Warning,
        Message = "Created a development PKI in {Directory} (unencrypted private keys: for development only)")]
    public static partial void DevelopmentPkiCreated(ILogger logger, string directory);

    [LoggerMessage(EventId = DevelopmentPkiLoadedId, EventName = "DevelopmentPkiLoaded", Level = LogLevel.Information,
        Message = "Using the development PKI in {Directory}")]
    public static partial void DevelopmentPkiLoaded(ILogger logger, string directory);

    [LoggerMessage(EventId = CertificateIssuedId, EventName = "CertificateIssued", Level = LogLevel.Information,
        Message = "Issued certificate serial={Serial} subject={Subject} notAfter={NotAfter:u} to {Path}")]
    public static partial void CertificateIssued(ILogger logger, string serial, string subject, DateTimeOffset notAfter, string path);
}
