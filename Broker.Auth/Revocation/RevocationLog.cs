using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

/// <summary>Revocation log events, ids 4000-4099 (stable: dashboards and alerts key on them).</summary>
internal static partial class RevocationLog
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Information,
        Message = "CRL from {Source} loaded: issuer '{Issuer}', number {Number}, thisUpdate {ThisUpdate:O}, nextUpdate {NextUpdate:O}, {RevokedCount} revoked")]
    public static partial void CrlLoaded(ILogger logger, string source, string issuer, string number, DateTimeOffset thisUpdate, DateTimeOffset? nextUpdate, int revokedCount);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning,
        Message = "CRL fetch from {Source} failed: {Error}; {Fallback}")]
    public static partial void CrlFetchFailed(ILogger logger, string source, string error, string fallback);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning,
        Message = "CRL from {Source} rejected: {Error}; {Fallback}")]
    public static partial void CrlInvalid(ILogger logger, string source, string error, string fallback);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning,
        Message = "CRL of '{Issuer}' from {Source} is past its nextUpdate {NextUpdate:O}; {Action}")]
    public static partial void CrlStale(ILogger logger, string issuer, string source, DateTimeOffset? nextUpdate, string action);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning,
        Message = "CRL file {Path} cannot be read: {Error}")]
    public static partial void CrlFileUnreadable(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning,
        Message = "CRL of '{Issuer}' from {Source} has number {Number}, lower than the {Current} already held: ignored")]
    public static partial void CrlOlder(ILogger logger, string issuer, string source, string number, string current);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information,
        Message = "CRL from {Source} names issuer '{Issuer}' (number {Number}), a CA no checked chain has shown yet: not used until that CA verifies its signature")]
    public static partial void CrlPending(ILogger logger, string source, string issuer, string number);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning,
        Message = "OCSP request to {Responder} for serial {Serial} failed ({Result}): {Error}")]
    public static partial void OcspFailed(ILogger logger, string responder, string serial, OcspRequestResult result, string error);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Debug,
        Message = "OCSP {Responder} says serial {Serial} is {Status} (thisUpdate {ThisUpdate:O}, nextUpdate {NextUpdate:O}) in {LatencyMs} ms")]
    public static partial void OcspAnswered(ILogger logger, string responder, string serial, OcspCertStatus status, DateTimeOffset thisUpdate, DateTimeOffset? nextUpdate, long latencyMs);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Warning,
        Message = "OCSP {Responder} does not know serial {Serial} (status unknown); handled as {Handling}")]
    public static partial void OcspUnknown(ILogger logger, string responder, string serial, string handling);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Warning,
        Message = "Certificate '{Subject}' refused: {Detail}")]
    public static partial void Refused(ILogger logger, string subject, string detail);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Warning,
        Message = "Certificate '{Subject}' admitted although its revocation status is unknown (soft-fail): {Detail}")]
    public static partial void SoftFailAdmitted(ILogger logger, string subject, string detail);

    [LoggerMessage(EventId = 4030, Level = LogLevel.Warning,
        Message = "Connected client '{Subject}' (serial {Serial}) dropped: {Reason} ({Detail})")]
    public static partial void ConnectionDropped(ILogger logger, string subject, string serial, string reason, string detail);

    [LoggerMessage(EventId = 4031, Level = LogLevel.Error,
        Message = "Revocation monitor pass failed")]
    public static partial void MonitorFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4032, Level = LogLevel.Debug,
        Message = "Revocation monitor re-checked {Count} connected clients, dropped {Dropped}")]
    public static partial void MonitorPass(ILogger logger, int count, int dropped);

    [LoggerMessage(EventId = 4040, Level = LogLevel.Warning,
        Message = "Development OCSP responder: bad request: {Error}")]
    public static partial void DevOcspBadRequest(ILogger logger, string error);

    [LoggerMessage(EventId = 4041, Level = LogLevel.Information,
        Message = "Development PKI: revoked '{Subject}' serial {Serial}; CRL {Crl} number {Number}")]
    public static partial void DevPkiRevoked(ILogger logger, string subject, string serial, string crl, string number);
}
