using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using OmniBroker.Enrollment.Issuing;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Enrollment.Mqtt;

/// <summary>
/// Certificate renewal over MQTT 5.0 request/response (§4.10) for devices without an HTTP stack. The device
/// publishes its CSR (PEM, base64 DER or raw DER) to <see cref="Topic"/> with a Response Topic and Correlation Data;
/// the broker answers on that Response Topic, to the requester alone, with the new certificate and its CA chain
/// (PEM, content type application/pem-certificate-chain, user property status=issued) or a refusal (text,
/// status=refused, reason, http-status). Same checks as EST simplereenroll, the policy action renew included.
/// </summary>
public sealed class MqttRenewalHandler(EnrollmentService service, ILogger<MqttRenewalHandler> logger) : IReservedTopicHandler
{
    public const string Topic = "$omnibroker/certificates/renew";

    public bool Handles(string topic) => string.Equals(topic, Topic, StringComparison.Ordinal);

    public void Handle(ReservedTopicRequest request) => _ = RenewAsync(request);

    private async Task RenewAsync(ReservedTopicRequest request)
    {
        var requester = "mqtt:" + request.ClientId;
        try
        {
            if (request.ResponseTopic is null)
            {
                // Nothing could carry the certificate back: refuse rather than issue one nobody receives.
                throw EnrollmentException.BadRequest("no-response-topic", $"a renewal request on {Topic} needs a Response Topic (MQTT 5.0)");
            }
            var csr = CertificateSigningRequest.Parse(Decode(request.Payload), service.Options.MinimumRsaBits);
            var issued = await service.RenewAsync(request.Certificate, EnrollmentService.MethodRenewMqtt, requester, csr, CancellationToken.None).ConfigureAwait(false);
            var pem = new StringBuilder(issued.ExportCertificatePem()).Append('\n');
            foreach (var ca in service.Authority.Chain)
            {
                pem.Append(ca.ExportCertificatePem()).Append('\n');
            }
            request.Reply(new ReservedTopicReply(Encoding.ASCII.GetBytes(pem.ToString()), "application/pem-certificate-chain",
                [new("status", "issued"), new("serial", issued.SerialNumber), new("not-after", issued.NotAfter.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture))]));
        }
        catch (EnrollmentException ex)
        {
            if (ex.Reason is "bad-csr" or "bad-signature" or "weak-key" or "no-response-topic")
            {
                service.CountRefusal(EnrollmentService.MethodRenewMqtt, requester, ex);
            }
            List<KeyValuePair<string, string>> properties = [new("status", "refused"), new("reason", ex.Reason), new("http-status", ex.StatusCode.ToString(CultureInfo.InvariantCulture))];
            if (ex.RetryAfter is { } retry)
            {
                properties.Add(new("retry-after", Math.Ceiling(retry.TotalSeconds).ToString(CultureInfo.InvariantCulture)));
            }
            request.Reply(new ReservedTopicReply(Encoding.UTF8.GetBytes(ex.Message), "text/plain; charset=utf-8", properties));
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Security.Cryptography.CryptographicException or IOException)
        {
            logger.LogWarning(1410, ex, "MQTT renewal for {ClientId} failed", request.ClientId);
            request.Reply(new ReservedTopicReply(Encoding.UTF8.GetBytes("internal error"), "text/plain; charset=utf-8",
                [new("status", "refused"), new("reason", "internal-error"), new("http-status", "500")]));
        }
    }

    private static byte[] Decode(byte[] payload)
    {
        if (payload.Length > 0 && payload[0] == 0x30)
        {
            return payload; // raw DER: a SEQUENCE
        }
        var text = Encoding.ASCII.GetString(payload).Trim();
        if (text.StartsWith("-----BEGIN", StringComparison.Ordinal))
        {
            var start = text.IndexOf('\n', StringComparison.Ordinal);
            var end = text.LastIndexOf("-----END", StringComparison.Ordinal);
            text = start < 0 || end < start ? "" : text[start..end];
        }
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw EnrollmentException.BadRequest("bad-csr", "the payload must be a CSR: PEM, base64 of the DER, or the DER itself");
        }
    }
}
