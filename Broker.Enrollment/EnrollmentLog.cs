using Microsoft.Extensions.Logging;

namespace OmniBroker.Enrollment;

/// <summary>Enrollment log events, ids 14xx. 1400 is the audit event of every issuance.</summary>
internal static partial class EnrollmentLog
{
    [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "Certificate issued (audit): serial {Serial}, subject '{Subject}', method {Method}, requester {Requester}, key {Key}, not after {NotAfter:u}")]
    public static partial void Issued(ILogger logger, string serial, string subject, string method, string requester, string key, DateTime notAfter);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Enrollment refused: method {Method}, requester {Requester}, status {Status}, reason {Reason}: {Detail}")]
    public static partial void Refused(ILogger logger, string method, string requester, int status, string reason, string detail);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Information, Message = "Certificate {Serial} superseded by {NewSerial} refused at CONNECT for client {ClientId} (grace period over)")]
    public static partial void SupersededRefused(ILogger logger, string serial, string? newSerial, string clientId);
}
