namespace OmniBroker.Enrollment.Issuing;

/// <summary>A refused enrollment or renewal: <see cref="StatusCode"/> is the HTTP status EST answers with (400 bad
/// input, 401 no credentials, 403 not allowed, 413 too large, 415 wrong content type, 429 rate limited), and the
/// message is the text/plain body; the MQTT path puts both in its reply.</summary>
public sealed class EnrollmentException(int statusCode, string reason, string message, TimeSpan? retryAfter = null) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    /// <summary>Short, stable reason for metrics and the MQTT reply ("bad-csr", "weak-key", "subject-changed", ...).</summary>
    public string Reason { get; } = reason;

    public TimeSpan? RetryAfter { get; } = retryAfter;

    public static EnrollmentException BadRequest(string reason, string message) => new(400, reason, message);

    public static EnrollmentException Forbidden(string reason, string message) => new(403, reason, message);
}
