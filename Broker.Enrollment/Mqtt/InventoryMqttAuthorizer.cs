using System.Globalization;
using Microsoft.Extensions.Logging;
using OmniBroker.Enrollment.Inventory;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Enrollment.Mqtt;

/// <summary>
/// Wraps the policy's <see cref="IMqttAuthorizer"/> at CONNECT: records every certificate seen (inventory: first/last
/// seen, client ids), refuses a superseded certificate once Est:SupersededGracePeriod has passed, and tells 5.0
/// clients their certificate's expiry in CONNACK User Properties: <c>omnibroker-certificate-not-after</c> (ISO 8601
/// UTC) always, and <c>omnibroker-certificate-renew</c> = <c>due</c> when it expires within Est:ExpiryWarningDays.
/// </summary>
public sealed class InventoryMqttAuthorizer(IMqttAuthorizer inner, ICertificateInventory inventory, EstOptions options, TimeProvider time, ILogger<InventoryMqttAuthorizer> logger) : IMqttAuthorizer
{
    public const string NotAfterProperty = "omnibroker-certificate-not-after";
    public const string RenewProperty = "omnibroker-certificate-renew";

    public event Action? PolicyChanged
    {
        add => inner.PolicyChanged += value;
        remove => inner.PolicyChanged -= value;
    }

    public ConnectDecision AuthorizeConnect(MqttClientInfo client)
    {
        var certificate = client.Certificate;
        if (certificate is not null && options.SupersededGracePeriod is { } grace
            && inventory.FindInactive(certificate.SerialNumber) is { Status: CertificateStatus.Superseded, Since: { } since } superseded
            && time.GetUtcNow() - since >= grace)
        {
            EnrollmentLog.SupersededRefused(logger, certificate.SerialNumber, superseded.SupersededBy, client.ClientId);
            return ConnectDecision.Deny($"certificate {certificate.SerialNumber} was renewed (superseded by {superseded.SupersededBy}); connect with the new one");
        }

        var decision = inner.AuthorizeConnect(client);
        if (!decision.Allowed || certificate is null)
        {
            return decision;
        }
        inventory.RecordSeen(certificate, client.ClientId);
        if (client.ProtocolVersion != MqttProtocolVersion.V500)
        {
            return decision;
        }
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
        List<KeyValuePair<string, string>> properties = [.. decision.ConnAckUserProperties ?? [], new(NotAfterProperty, notAfter.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))];
        if (notAfter - time.GetUtcNow() <= TimeSpan.FromDays(options.ExpiryWarningDays))
        {
            properties.Add(new(RenewProperty, "due"));
        }
        return decision with { ConnAckUserProperties = properties };
    }
}
