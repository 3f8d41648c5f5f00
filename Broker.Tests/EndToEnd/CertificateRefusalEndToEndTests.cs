using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Xunit;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>mosquitto_pub with certificates the broker must refuse at the TLS layer, and the reason it logs (event 2001).</summary>
public sealed class CertificateRefusalEndToEndTests(TestPkiBroker broker) : IClassFixture<TestPkiBroker>
{
    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MosquittoPub_ValidCertificate_Published(string version)
    {
        var publisher = await PublishAsync(broker.Good, version);

        publisher.ExitCode.Should().Be(0, publisher + "\n" + broker.BrokerWarnings());
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MosquittoPub_CertificateFromAnotherCa_RefusedAsUntrusted(string version)
    {
        await AssertRefusedAsync(broker.OtherCa, broker.OtherCaCertificate, version, "untrusted");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MosquittoPub_ExpiredCertificate_RefusedAsExpired(string version)
    {
        await AssertRefusedAsync(broker.Expired, broker.ExpiredCertificate, version, "expired");
    }

    private async Task AssertRefusedAsync(DeviceFiles device, X509Certificate2 certificate, string version, string reason)
    {
        var start = broker.Broker.Logs.WithEventId(2001).Count(e => e.Value("Serial") == certificate.SerialNumber);

        var publisher = await PublishAsync(device, version);

        publisher.ExitCode.Should().NotBe(0, "the broker refuses the certificate\n" + publisher);
        // The server logs after the client saw the close: wait (bounded) for this attempt's entry.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        IReadOnlyList<string?> reasons;
        do
        {
            reasons = broker.Broker.Logs.WithEventId(2001).Where(e => e.Value("Serial") == certificate.SerialNumber).Select(e => e.Value("Reason")).ToArray();
            if (reasons.Count > start || DateTime.UtcNow > deadline)
            {
                break;
            }
            await Task.Delay(20);
        }
        while (true);
        reasons.Should().HaveCount(start + 1, "each refused connection is logged once").And.OnlyContain(r => r == reason);
    }

    private Task<ClientResult> PublishAsync(DeviceFiles device, string version) =>
        broker.MosquittoPubAsync(device, version, "e2e-tls-" + Guid.NewGuid().ToString("N")[..12],
            ["-t", EndToEndBroker.NewTopicPrefix("tls") + "/hello", "-q", "1", "-m", "hello"]);
}
