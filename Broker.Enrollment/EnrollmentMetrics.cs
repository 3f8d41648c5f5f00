using System.Diagnostics.Metrics;
using OmniBroker.Enrollment.Inventory;

namespace OmniBroker.Enrollment;

/// <summary>Meter "OmniBroker.Enrollment" (from IMeterFactory): issued and refused enrollments, and the inventory's
/// certificates by status and those expiring within Est:ExpiryWarningDays (read at most every 10 s).</summary>
public sealed class EnrollmentMetrics
{
    public const string MeterName = "OmniBroker.Enrollment";

    private readonly Counter<long> _issued;
    private readonly Counter<long> _refused;
    private readonly Lock _lock = new();
    private (IReadOnlyDictionary<string, long> ByStatus, long Expiring) _summary = (new Dictionary<string, long>(), 0);
    private long _summaryAt = long.MinValue;

    public EnrollmentMetrics(IMeterFactory meterFactory, ICertificateInventory inventory, int expiryWarningDays, TimeProvider time)
    {
        var meter = meterFactory.Create(MeterName);
        _issued = meter.CreateCounter<long>("omnibroker.enrollment.issued", "{certificate}", "Certificates issued by enrollment or renewal, by method");
        _refused = meter.CreateCounter<long>("omnibroker.enrollment.refused", "{request}", "Enrollment and renewal requests refused, by method and reason");
        meter.CreateObservableGauge("omnibroker.certificates", () => Summary(inventory, expiryWarningDays, time).ByStatus
            .Select(p => new Measurement<long>(p.Value, new KeyValuePair<string, object?>("status", p.Key))), "{certificate}",
            "Certificates in the inventory (issued or seen at CONNECT), by status");
        meter.CreateObservableGauge("omnibroker.certificates.expiring", () => Summary(inventory, expiryWarningDays, time).Expiring, "{certificate}",
            "Active certificates in the inventory expiring within Est:ExpiryWarningDays");
    }

    public void Issued(string method) => _issued.Add(1, new KeyValuePair<string, object?>("method", method));

    public void Refused(string method, string reason) =>
        _refused.Add(1, new KeyValuePair<string, object?>("method", method), new KeyValuePair<string, object?>("reason", reason));

    private (IReadOnlyDictionary<string, long> ByStatus, long Expiring) Summary(ICertificateInventory inventory, int days, TimeProvider time)
    {
        lock (_lock)
        {
            var now = time.GetTimestamp();
            if (_summaryAt == long.MinValue || time.GetElapsedTime(_summaryAt, now) > TimeSpan.FromSeconds(10))
            {
                _summary = inventory.Summary(days);
                _summaryAt = now;
            }
            return _summary;
        }
    }
}
