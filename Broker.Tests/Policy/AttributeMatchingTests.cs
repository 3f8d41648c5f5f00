using System.Net;
using System.Security.Cryptography;
using FluentAssertions;
using OmniBroker.Policy.Certificates;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class AttributeMatchingTests
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 s_rich = PolicyTestCerts.Create(new PolicyTestCerts.Spec
    {
        Subject =
        [
            ("2.5.4.6", "DE"), ("2.5.4.8", "Berlin"), ("2.5.4.7", "berlin"), ("2.5.4.10", "Acme"),
            ("2.5.4.11", "sensors"), ("2.5.4.11", "field-trial"), ("2.5.4.3", "sensor-042"),
        ],
        Dns = ["Sensor-042.Devices.Acme.Example"],
        Uris = ["urn:device:sensor-042", "spiffe://acme/sensors/sensor-042"],
        Emails = ["ops@acme.example"],
        Ips = [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("2001:db8::1")],
        Extensions = [(PolicyTestCerts.DeviceTypeOid, PolicyTestCerts.Utf8String("temperature-sensor")), ("1.3.6.1.4.1.59999.1.2", PolicyTestCerts.DerInteger(42))],
        Serial = [0x00, 0x8F, 0x12, 0xAB],
    });

    [Theory]
    [InlineData("cert.cn", "sensor-042", true)]
    [InlineData("cert.cn", "sensor-043", false)]
    [InlineData("cert.cn", "Sensor-042", false)] // subject fields compare exactly
    [InlineData("cert.o", "Acme", true)]
    [InlineData("cert.ou", "sensors", true)]
    [InlineData("cert.ou", "field-trial", true)] // every OU counts
    [InlineData("cert.ou", "gateways", false)]
    [InlineData("cert.c", "DE", true)]
    [InlineData("cert.st", "Berlin", true)]
    [InlineData("cert.l", "berlin", true)]
    [InlineData("cert.l", "munich", false)]
    [InlineData("cert.serial", "8F12AB", true)]
    [InlineData("cert.serial", "00:8f:12:ab", true)] // separators, case and the DER sign byte do not matter
    [InlineData("cert.serial", "8F12AC", false)]
    [InlineData("cert.issuer.cn", "Acme Device CA", true)]
    [InlineData("cert.issuer.o", "Acme", true)]
    [InlineData("cert.issuer.ou", "pki", true)]
    [InlineData("cert.issuer.c", "DE", true)]
    [InlineData("cert.issuer.st", "Bavaria", true)]
    [InlineData("cert.issuer.l", "munich", true)]
    [InlineData("cert.issuer.cn", "sensor-042", false)]
    [InlineData("cert.san.dns", "sensor-042.devices.acme.example", true)] // DNS names ignore case
    [InlineData("cert.san.uri", "spiffe://acme/sensors/sensor-042", true)]
    [InlineData("cert.san.uri", "urn:device:sensor-042", true)]
    [InlineData("cert.san.uri", "urn:device:sensor-041", false)]
    [InlineData("cert.san.email", "OPS@acme.example", true)]
    [InlineData("cert.san.ip", "10.1.2.3", true)]
    [InlineData("cert.san.ip", "2001:0db8:0:0:0:0:0:1", true)] // compared in canonical form
    [InlineData("cert.san.ip", "10.1.2.4", false)]
    [InlineData("cert.ext.deviceType", "temperature-sensor", true)]
    [InlineData("cert.ext.deviceType", "gateway", false)]
    [InlineData("cert.ext.level", "42", true)] // an INTEGER extension compares as its decimal value
    public void Equals_EachAttribute_MatchesCertificateValue(string attribute, string value, bool expected)
    {
        var policy = TestPolicy.Compile($$"""
            extensions:
              deviceType: 1.3.6.1.4.1.59999.1.1
              level: 1.3.6.1.4.1.59999.1.2
            rules:
              - id: probe
                effect: allow
                actions: [publish]
                match:
                  {{attribute}}: "{{value}}"
                topics: [granted/topic]
            """);

        policy.Matches(s_rich).Should().Be(expected);
    }

    [Fact]
    public void Fingerprint_Sha256OfCertificate_Matches()
    {
        var fingerprint = Convert.ToHexString(SHA256.HashData(s_rich.RawData));
        var withColons = string.Join(":", Enumerable.Range(0, 32).Select(i => fingerprint.Substring(i * 2, 2))).ToLowerInvariant();

        TestPolicy.MatchPolicy("cert.fingerprint", fingerprint).Matches(s_rich).Should().BeTrue();
        TestPolicy.MatchPolicy("cert.fingerprint", withColons).Matches(s_rich).Should().BeTrue();
        TestPolicy.MatchPolicy("cert.fingerprint", fingerprint).Matches(PolicyTestCerts.Sensor001).Should().BeFalse();
    }

    [Theory]
    [InlineData("[sensor-001, sensor-042]", true)]
    [InlineData("{ anyOf: [sensor-001, sensor-042] }", true)]
    [InlineData("{ anyOf: [sensor-001, sensor-002] }", false)]
    [InlineData("{ equals: sensor-042 }", true)]
    [InlineData("{ prefix: sensor- }", true)]
    [InlineData("{ prefix: [gw-, sensor-] }", true)]
    [InlineData("{ prefix: gw- }", false)]
    [InlineData("{ glob: 'sensor-0?2' }", true)]
    [InlineData("{ glob: '*-042' }", true)]
    [InlineData("{ glob: 'sensor-1*' }", false)]
    [InlineData("{ glob: '*' }", true)]
    [InlineData("{ present: true }", true)]
    [InlineData("{ present: false }", false)]
    [InlineData("{ absent: true }", false)]
    [InlineData("{ absent: false }", true)]
    public void ConditionOperators_OnCommonName_Evaluate(string condition, bool expected)
    {
        TestPolicy.MatchPolicy("cert.cn", condition).Matches(s_rich).Should().Be(expected);
    }

    [Fact]
    public void PresentAbsent_OnMissingAttribute_Evaluate()
    {
        // Sensor001 has no DNS SAN, no email and no ST.
        TestPolicy.MatchPolicy("cert.san.dns", "{ absent: true }").Matches(PolicyTestCerts.Sensor001).Should().BeTrue();
        TestPolicy.MatchPolicy("cert.san.dns", "{ present: true }").Matches(PolicyTestCerts.Sensor001).Should().BeFalse();
        TestPolicy.MatchPolicy("cert.st", "{ glob: '*' }").Matches(PolicyTestCerts.Sensor001).Should().BeFalse();
        TestPolicy.MatchPolicy("cert.san.email", "{ absent: true }").Matches(s_rich).Should().BeFalse();
    }

    [Fact]
    public void Conditions_SeveralInOneRule_AllMustHold()
    {
        var policy = TestPolicy.Compile($$"""
            {{TestPolicy.Extensions}}
            rules:
              - id: probe
                effect: allow
                actions: [publish]
                match:
                  cert.ou: sensors
                  cert.l: berlin
                  cert.ext.deviceType: temperature-sensor
                topics: [granted/topic]
            """);

        policy.Matches(PolicyTestCerts.Sensor001).Should().BeTrue();  // berlin
        policy.Matches(PolicyTestCerts.Sensor002).Should().BeFalse(); // munich
        policy.Matches(PolicyTestCerts.GwBerlin).Should().BeFalse();  // gateways
    }

    [Fact]
    public void Match_Omitted_AppliesToEveryClient()
    {
        var policy = TestPolicy.Compile("""
            rules:
              - id: everyone
                effect: allow
                actions: [publish]
                topics: [granted/topic]
            """);

        policy.Matches(PolicyTestCerts.Sensor001).Should().BeTrue();
        policy.Matches(PolicyTestCerts.BackendTelemetry).Should().BeTrue();
    }

    [Fact]
    public void Subject_ValueWithCommaAndEquals_IsOneValue()
    {
        // Decoded from DER, not from the display string, so a CN cannot forge an OU.
        var sneaky = PolicyTestCerts.Create(new PolicyTestCerts.Spec { Subject = [("2.5.4.3", "x, OU=gateways")] });

        TestPolicy.MatchPolicy("cert.ou", "gateways").Matches(sneaky).Should().BeFalse();
        TestPolicy.MatchPolicy("cert.cn", "'x, OU=gateways'").Matches(sneaky).Should().BeTrue();
    }

    [Fact]
    public void ExtensionValue_NonStringEncodings_AreDecoded()
    {
        ClientAttributes.DecodeExtensionValue(PolicyTestCerts.Utf8String("gateway")).Should().Be("gateway");
        ClientAttributes.DecodeExtensionValue(PolicyTestCerts.DerInteger(-7)).Should().Be("-7");
        ClientAttributes.DecodeExtensionValue([0x01, 0x01, 0xFF]).Should().Be("true");
        ClientAttributes.DecodeExtensionValue([0x30, 0x03, 0x02, 0x01, 0x05]).Should().Be("3003020105"); // a SEQUENCE: hex
        ClientAttributes.DecodeExtensionValue([0x0C, 0x05, 0x61]).Should().Be("0C0561"); // truncated: hex
    }

    [Fact]
    public void Client_WithoutCertificate_MatchesOnlyUnconditionalRules()
    {
        var policy = TestPolicy.MatchPolicy("cert.cn", "{ absent: true }");

        policy.Grants(null).CanPublish("granted/topic", Mqtt.Packets.MqttQos.AtMostOnce, false).Should().BeTrue();
        TestPolicy.MatchPolicy("cert.o", "Acme").Grants(null).CanPublish("granted/topic", Mqtt.Packets.MqttQos.AtMostOnce, false).Should().BeFalse();
    }
}
