using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OmniBroker.Host;
using OmniBroker.Host.Configuration;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Policy.Hosting;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>Issue 12 item 5: one front door checks every key (unknown ones included) and one duration format.</summary>
public sealed class ConfigurationFrontDoorTests : IDisposable
{
    private readonly string _directory = TempDirectory.Create("omnibroker-frontdoor");

    public void Dispose() => TempDirectory.Delete(_directory);

    private Dictionary<string, string?> Values(params (string Key, string? Value)[] values)
    {
        var settings = values.ToDictionary(v => v.Key, v => v.Value);
        settings.TryAdd("DataDirectory", Path.Combine(_directory, "data"));
        settings.TryAdd("Mqtt:Port", "0");
        settings.TryAdd("Http:Url", "http://127.0.0.1:0");
        return settings;
    }

    private BrokerConfigurationException BuildFails(params (string Key, string? Value)[] values)
    {
        var settings = Values(values);
        var act = () => OmniBrokerApp.Build([], (IConfigurationBuilder c) => c.AddInMemoryCollection(settings));
        return act.Should().Throw<BrokerConfigurationException>().Which;
    }

    [Theory]
    [InlineData("Mqtt:Bogus", "Mqtt:Bogus: unknown key")]
    [InlineData("Mqtt:MaxSubscriptionPerClient", "Mqtt:MaxSubscriptionPerClient: unknown key")]
    [InlineData("Tls:HandshakeTimout", "Tls:HandshakeTimout: unknown key")]
    [InlineData("Http:Ur", "Http:Ur: unknown key")]
    [InlineData("WebSockets:Prot", "WebSockets:Prot: unknown key")]
    [InlineData("Mqt:Port", "Mqt: unknown key")]
    public void Build_UnknownKey_ErrorNamesTheKey(string key, string expected)
    {
        BuildFails((key, "1")).Errors.Should().Contain(e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Build_SeveralProblems_AllReportedAtOnce()
    {
        var error = BuildFails(("Mqtt:Bogus", "1"), ("Mqtt:ConnectTimeout", "soon"), ("Mqtt:MaxConnections", "many"), ("Policy:ReloadDebounce", "-5s"));

        error.Errors.Should().Contain(e => e.StartsWith("Mqtt:Bogus: unknown key", StringComparison.Ordinal));
        error.Errors.Should().Contain(e => e.StartsWith("Mqtt:ConnectTimeout: 'soon' is not a duration", StringComparison.Ordinal));
        error.Errors.Should().Contain("Mqtt:MaxConnections: 'many' is not a whole number");
        error.Errors.Should().Contain(e => e.StartsWith("Policy:ReloadDebounce: '-5s' is not a duration", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    [InlineData("00:00:30", 30)]
    [InlineData("1500ms", 1.5)]
    [InlineData("45", 45)]
    public void Build_DurationForms_AcceptedAlikeInEverySection(string text, double seconds)
    {
        var settings = Values(("Mqtt:ConnectTimeout", text), ("Mqtt:IncompletePacketTimeout", text),
            ("Policy:ReloadDebounce", text), ("Tls:HandshakeQueueTimeout", text), ("Revocation:OcspTimeout", text));
        var app = OmniBrokerApp.Build([], (IConfigurationBuilder c) => c.AddInMemoryCollection(settings));

        var expected = TimeSpan.FromSeconds(seconds);
        var mqtt = app.Services.GetRequiredService<MqttBroker>().Options;
        mqtt.ConnectTimeout.Should().Be(expected);
        mqtt.IncompletePacketTimeout.Should().Be(expected);
        mqtt.Should().BeSameAs(app.Services.GetRequiredService<BrokerSettings>().Mqtt, "the Mqtt section is bound once");
        app.Services.GetRequiredService<IOptions<PolicyOptions>>().Value.ReloadDebounce.Should().Be(expected);
        app.Services.GetRequiredService<BrokerSettings>().HandshakeQueueTimeout.Should().Be(expected);
        app.Services.GetRequiredService<OmniBroker.Auth.Revocation.RevocationOptions>().OcspTimeout.Should().Be(expected);
    }

    [Fact]
    public void Build_EngineOptionOutOfRange_ErrorNamesMqttKey()
    {
        BuildFails(("Mqtt:ReceiveMaximum", "0")).Errors.Should().Contain(e => e.StartsWith("Mqtt:ReceiveMaximum must be at least 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_UnknownMqttKey_Exit2NamingKey()
    {
        var result = await HostProcess.RunAsync(_directory,
            ["--data-dir", Path.Combine(_directory, "data"), "--port", "0", "--http-url", "http://127.0.0.1:0", "--Mqtt:Bogus=1"]);

        result.ExitCode.Should().Be(2, result.ToString());
        result.Stderr.Trim().Should().StartWith("omnibroker: invalid configuration: Mqtt:Bogus: unknown key");
        result.Stderr.Should().NotContain("   at ");
    }

    [Fact]
    public async Task Serve_BadDuration_Exit2NamingKey()
    {
        var result = await HostProcess.RunAsync(_directory,
            ["--data-dir", Path.Combine(_directory, "data"), "--port", "0", "--http-url", "http://127.0.0.1:0", "--Tls:HandshakeTimeout=ten"]);

        result.ExitCode.Should().Be(2, result.ToString());
        result.Stderr.Trim().Should().Be("omnibroker: invalid configuration: Tls:HandshakeTimeout: 'ten' is not " + Durations.Grammar);
    }
}
