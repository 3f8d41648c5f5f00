using FluentAssertions;
using Microsoft.Extensions.Configuration;
using OmniBroker.Host;
using OmniBroker.Host.Cli;
using OmniBroker.Host.Configuration;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

public sealed class ConfigurationValidationTests : IDisposable
{
    private readonly string _directory = TempDirectory.Create("omnibroker-config");

    public void Dispose() => TempDirectory.Delete(_directory);

    private BrokerConfigurationException BuildFails(params (string Key, string? Value)[] values)
    {
        var settings = values.ToDictionary(v => v.Key, v => v.Value);
        settings.TryAdd("DataDirectory", Path.Combine(_directory, "data"));
        var act = () => OmniBrokerApp.Build([], (IConfigurationBuilder c) => c.AddInMemoryCollection(settings));
        return act.Should().Throw<BrokerConfigurationException>().Which;
    }

    [Fact]
    public void Build_PortOutOfRange_ErrorNamesMqttPort()
    {
        BuildFails(("Mqtt:Port", "70000")).Errors.Should().Contain("Mqtt:Port: 70000 is not a valid port (0-65535)");
    }

    [Fact]
    public void Build_PortNotANumber_ErrorNamesMqttPort()
    {
        BuildFails(("Mqtt:Port", "eighty")).Message.Should().Contain("Mqtt:Port: eighty is not a valid port");
    }

    [Fact]
    public void Build_MissingTrustAnchorFile_ErrorNamesIndexedKey()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));
        var missing = Path.Combine(_directory, "nope.pem");

        var error = BuildFails(("Tls:ServerCertificate", files.ServerCertificate), ("Tls:ServerKey", files.ServerKey), ("Tls:TrustAnchors:0", missing));

        error.Errors.Should().Contain($"Tls:TrustAnchors[0]: file {missing} not found");
    }

    [Fact]
    public void Build_TrustAnchorNotPem_ErrorNamesKey()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));
        var garbage = Path.Combine(_directory, "garbage.pem");
        File.WriteAllText(garbage, "not a certificate");

        var error = BuildFails(("Tls:ServerCertificate", files.ServerCertificate), ("Tls:ServerKey", files.ServerKey), ("Tls:TrustAnchors:0", files.Root), ("Tls:TrustAnchors:1", garbage));

        error.Errors.Should().ContainSingle().Which.Should().StartWith("Tls:TrustAnchors[1]: ").And.Contain("no PEM certificate");
    }

    [Fact]
    public void Build_ServerCertificateWithoutKeyAndAnchors_EveryErrorAtOnce()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));

        var error = BuildFails(("Tls:ServerCertificate", files.ServerCertificate), ("Mqtt:Port", "-1"), ("Http:Url", "ftp://x"));

        error.Errors.Should().Contain(e => e.StartsWith("Tls:ServerKey: required", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Tls:TrustAnchors: at least one trust anchor", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Mqtt:Port: -1", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Http:Url: 'ftp://x'", StringComparison.Ordinal));
    }

    [Fact]
    public void Build_BadEngineOption_ErrorNamesKey()
    {
        BuildFails(("Mqtt:MaximumPacketSize", "huge")).Message.Should().Contain("Mqtt:MaximumPacketSize");
    }

    [Fact]
    public void Build_BadAddressAndTimeout_ErrorsNameKeys()
    {
        var error = BuildFails(("Mqtt:Address", "not-an-ip"), ("Tls:HandshakeTimeout", "soon"), ("Tls:AllowTlsResume", "perhaps"));

        error.Errors.Should().Contain("Mqtt:Address: 'not-an-ip' is not an IP address");
        error.Errors.Should().Contain(e => e.StartsWith("Tls:HandshakeTimeout: 'soon'", StringComparison.Ordinal));
        error.Errors.Should().Contain("Tls:AllowTlsResume: 'perhaps' is not true or false");
    }

    [Fact]
    public void Settings_CommandLineFriendlySwitches_MapToKeys()
    {
        var configuration = BrokerConfiguration.Build(["--port", "1884", "--data-dir", _directory, "--Mqtt:Address=127.0.0.1", "--http-url", ""]);

        var settings = BrokerSettings.Load(configuration);

        settings.MqttPort.Should().Be(1884);
        settings.MqttAddress.ToString().Should().Be("127.0.0.1");
        settings.DataDirectory.Should().Be(_directory);
        settings.Http.Should().BeNull("an empty Http:Url disables the HTTP listener");
        settings.UsesDevelopmentPki.Should().BeTrue();
    }

    [Fact]
    public void Settings_Defaults_DocumentedValues()
    {
        var settings = BrokerSettings.Load(new ConfigurationBuilder().Build());

        settings.MqttPort.Should().Be(8883);
        settings.MqttAddress.ToString().Should().Be("0.0.0.0");
        settings.Http!.Url.Should().Be("http://127.0.0.1:9090");
        settings.AllowTlsResume.Should().BeFalse();
        settings.HandshakeTimeout.Should().Be(TimeSpan.FromSeconds(10));
        settings.DataDirectory.Should().Be(Path.GetFullPath("data"));
    }

    [Fact]
    public async Task Cli_ServeWithBadPort_ExitCode2AndMessageNamesKey()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exitCode = await CliCommands.InvokeAsync(["serve", "--port", "70000", "--data-dir", Path.Combine(_directory, "data")], output, error);

        exitCode.Should().Be(2);
        error.ToString().Should().Contain("Mqtt:Port: 70000 is not a valid port");
    }

    [Fact]
    public async Task Cli_NoVerbWithBadKey_ServesAndExitsWith2()
    {
        var error = new StringWriter();

        var exitCode = await CliCommands.InvokeAsync(["--Mqtt:Port=x", $"--DataDirectory={Path.Combine(_directory, "data")}"], new StringWriter(), error);

        exitCode.Should().Be(2);
        error.ToString().Should().Contain("Mqtt:Port: x is not a valid port");
    }
}
