using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>
/// Every start-up failure of the real executable ends with one line per cause on stderr naming it, a non-zero exit
/// code, no stack trace, and no fail:/crit: log entry written while shutting down.
/// </summary>
public sealed class StartupErrorTests : IDisposable
{
    private readonly string _directory = TempDirectory.Create("omnibroker-startup-errors");

    public void Dispose() => TempDirectory.Delete(_directory);

    private Task<HostProcess.Result> ServeAsync(params string[] args) =>
        HostProcess.RunAsync(_directory, new[]
        {
            "serve", "--data-dir", Path.Combine(_directory, "data"), "--Mqtt:Address=127.0.0.1", "--port", "0",
            "--http-url", "http://127.0.0.1:0", "--Revocation:Mode=none",
            // A free port: with --Mqtt:Port set, the WebSocket listener would default to 8884, which a broker running
            // on this machine (the README's) may hold, adding a second line to the one these tests expect.
            "--WebSockets:Port=0",
        }.Concat(args));

    private static void AssertOneClearLine(HostProcess.Result result, int exitCode, params string[] expected)
    {
        result.ExitCode.Should().Be(exitCode, result.ToString());
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().ContainSingle(result.ToString()).Which.Should().StartWith("omnibroker: ").And.ContainAll(expected);
        (result.Stdout + result.Stderr).Should().NotContain("   at ", "no stack trace").And.NotContain("Unhandled exception");
        result.Stdout.Split('\n').Should().NotContain(l => l.Contains(" fail: ") || l.Contains(" crit: "), result.ToString());
    }

    private string PolicyDirectory(string name, string? fileContent)
    {
        var directory = Path.Combine(_directory, name);
        Directory.CreateDirectory(directory);
        if (fileContent is not null)
        {
            File.WriteAllText(Path.Combine(directory, "main.yaml"), fileContent);
        }
        return directory;
    }

    [Fact]
    public async Task Serve_MqttPortInUse_OneLineNamingPortExit1()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var result = await ServeAsync($"--Mqtt:Port={port}");

        AssertOneClearLine(result, 1, $"127.0.0.1:{port}", "Mqtt:Port", "address already in use");
    }

    [Fact]
    public async Task Serve_HttpPortInUse_OneLineNamingHttpUrlExit1()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var result = await ServeAsync($"--Http:Url=http://127.0.0.1:{port}");

        AssertOneClearLine(result, 1, "Http:Url", "address already in use");
    }

    [Fact]
    public async Task Serve_EmptyPolicyDirectory_OneLineNamingPolicyDirectoryExit2()
    {
        var result = await ServeAsync("--policy-dir", PolicyDirectory("empty", null));

        AssertOneClearLine(result, 2, "Policy:Directory", "no policy files");
    }

    [Fact]
    public async Task Serve_BrokenPolicy_OneLineNamingFileAndLineExit2()
    {
        var result = await ServeAsync("--policy-dir", PolicyDirectory("broken", "rules: [ {\n"));

        AssertOneClearLine(result, 2, "Policy:Directory", "main.yaml:2:", "invalid YAML");
    }

    [Fact]
    public async Task Serve_MissingPolicyDirectory_OneLineExit2()
    {
        var result = await ServeAsync("--policy-dir", Path.Combine(_directory, "no-such-dir"));

        AssertOneClearLine(result, 2, "Policy:Directory", "not found");
    }

    [Fact]
    public async Task Serve_ServerCertificateNotPem_OneLineNamingKeyExit2()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));
        var garbage = Path.Combine(_directory, "garbage.pem");
        File.WriteAllText(garbage, "not a certificate");

        var result = await ServeAsync($"--Tls:ServerCertificate={garbage}", $"--Tls:ServerKey={files.ServerKey}", $"--Tls:TrustAnchors={files.Root}");

        AssertOneClearLine(result, 2, "Tls:ServerCertificate", garbage);
    }

    [Fact]
    public async Task Serve_ServerKeyOfAnotherCertificate_OneLineNamingServerKeyExit2()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));
        using var other = TestPki.Create();
        var otherFiles = other.WriteFiles(Path.Combine(_directory, "other-tls"));

        var result = await ServeAsync($"--Tls:ServerCertificate={files.ServerCertificate}", $"--Tls:ServerKey={otherFiles.ServerKey}", $"--Tls:TrustAnchors={files.Root}");

        AssertOneClearLine(result, 2, "Tls:ServerKey", "is not the private key of");
    }

    [Fact]
    public async Task Serve_ServerKeyNotPem_OneLineNamingServerKeyExit2()
    {
        using var pki = TestPki.Create();
        var files = pki.WriteFiles(Path.Combine(_directory, "tls"));
        var garbage = Path.Combine(_directory, "garbage.key");
        File.WriteAllText(garbage, "not a key");

        var result = await ServeAsync($"--Tls:ServerCertificate={files.ServerCertificate}", $"--Tls:ServerKey={garbage}", $"--Tls:TrustAnchors={files.Root}");

        AssertOneClearLine(result, 2, "Tls:ServerKey", garbage);
    }

    [Fact]
    public async Task Serve_BadConfigurationValue_OneLineNamingKeyExit2()
    {
        var result = await ServeAsync("--Mqtt:MaximumPacketSize=abc");

        AssertOneClearLine(result, 2, "Mqtt:MaximumPacketSize", "abc");
    }
}
