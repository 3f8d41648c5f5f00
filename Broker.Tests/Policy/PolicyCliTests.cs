using System.CommandLine;
using FluentAssertions;
using OmniBroker.Host.Cli;
using Xunit;

namespace OmniBroker.Tests.Policy;

/// <summary>`omnibroker policy lint|explain`, invoked in-process through the real command objects.</summary>
public sealed class PolicyCliTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand { PolicyCommands.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = root.Parse(["policy", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Lint_RepositoryPolicies_AreValid()
    {
        var (exit, output, error) = Run("lint", TestPolicy.RepositoryPolicies());

        error.Should().BeEmpty();
        exit.Should().Be(0);
        var files = Directory.GetFiles(TestPolicy.RepositoryPolicies(), "*.yaml").Length;
        output.Should().StartWith($"OK: {files} files, ");
    }

    [Fact]
    public void Lint_BrokenPolicies_ExitsNonZero_WithEveryErrorAsFileLineCol()
    {
        var a = _dir.Write("a.yaml", "rules:\n  - id: a\n    effect: allow\n    actions: [publish]\n    topics: [\"x/#/y\"]\n");
        var b = _dir.Write("b.yaml", "rules:\n  - id: b\n    effect: perhaps\n    actions: [connect]\n");

        var (exit, output, error) = Run("lint", _dir.Path);

        exit.Should().Be(1);
        output.Should().BeEmpty();
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().Equal(
            $"{a}:5:14: error: topic 'x/#/y': '#' must be the last level",
            $"{b}:3:13: error: effect must be 'allow' or 'deny', not 'perhaps'",
            $"2 errors in {_dir.Path}");
    }

    [Fact]
    public void Explain_Publish_PrintsAllowAndRule()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);

        var (exit, output, _) = Run("explain", "--cert", cert, "--publish", "devices/sensor-001/telemetry", "--qos", "1", "--policy-dir", TestPolicy.RepositoryPolicies());

        exit.Should().Be(0);
        output.Should().StartWith("allow publish devices/sensor-001/telemetry (qos 1, retain false)");
        output.Should().MatchRegex(@"decided by: .*sensors\.yaml:\d+ rule 'sensors-publish-telemetry' \(allow\), filter devices/sensor-001/telemetry");
        output.Should().Contain("client id:  sensor-001 (the certificate's CN");
    }

    [Fact]
    public void Explain_ExplicitDeny_NamesDenyRule()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.GwBerlin, _dir.Path);

        var (exit, output, _) = Run("explain", "--cert", cert, "--publish", "firmware/gateway/3.0", "--policy-dir", TestPolicy.RepositoryPolicies());

        exit.Should().Be(1);
        output.Should().StartWith("deny publish firmware/gateway/3.0");
        output.Should().MatchRegex(@"decided by: .*firmware\.yaml:\d+ rule 'firmware-no-device-publish' \(explicit deny\)");
    }

    [Fact]
    public void Explain_NothingAllows_SaysDefaultDeny()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);

        var (exit, output, _) = Run("explain", "--cert", cert, "--subscribe", "devices/#", "--policy-dir", TestPolicy.RepositoryPolicies());

        exit.Should().Be(1);
        output.Should().StartWith("deny subscribe devices/#");
        output.Should().Contain("decided by: no rule allows: default deny");
    }

    [Fact]
    public void Explain_SubscribeWiderThanDeny_SaysGrantedAndWhatIsNotDelivered()
    {
        _dir.Write("p.yaml", """
            rules:
              - id: read-all
                effect: allow
                actions: [subscribe, receive]
                topics: ["#"]
              - id: nosubscribe
                effect: deny
                actions: [subscribe]
                topics: [test/nosubscribe]
            """);
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);

        var wide = Run("explain", "--cert", cert, "--subscribe", "#", "--policy-dir", _dir.Path);
        var narrow = Run("explain", "--cert", cert, "--subscribe", "test/nosubscribe", "--policy-dir", _dir.Path);
        var receive = Run("explain", "--cert", cert, "--receive", "test/nosubscribe", "--policy-dir", _dir.Path);

        wide.Exit.Should().Be(0);
        wide.Out.Should().StartWith("allow subscribe #");
        wide.Out.Should().MatchRegex(@"decided by: .*p\.yaml:\d+ rule 'read-all' \(allow\), filter #");
        wide.Out.Should().MatchRegex(@"granted; messages on topics matching test/nosubscribe will not be delivered \(.*p\.yaml:\d+ rule 'nosubscribe', explicit deny\)");
        narrow.Exit.Should().Be(1);
        narrow.Out.Should().MatchRegex(@"decided by: .*p\.yaml:\d+ rule 'nosubscribe' \(explicit deny\), filter test/nosubscribe");
        receive.Exit.Should().Be(1);
        receive.Out.Should().MatchRegex(@"decided by: .*p\.yaml:\d+ rule 'nosubscribe' \(explicit deny\)");
    }

    [Fact]
    public void Explain_ConnectWithWrongClientId_IsDenied()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);

        var allowed = Run("explain", "--cert", cert, "--connect", "--policy-dir", TestPolicy.RepositoryPolicies());
        var denied = Run("explain", "--cert", cert, "--connect", "--client-id", "sensor-002", "--policy-dir", TestPolicy.RepositoryPolicies());

        allowed.Exit.Should().Be(0);
        allowed.Out.Should().Contain("rule 'sensors-connect'");
        denied.Exit.Should().Be(1);
        denied.Out.Should().Contain("no rule allows: default deny");
    }

    [Fact]
    public void Explain_ReceiveAndAdmin_Work()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.BackendTelemetry, _dir.Path);

        Run("explain", "--cert", cert, "--receive", "devices/sensor-001/telemetry", "--policy-dir", TestPolicy.RepositoryPolicies()).Exit.Should().Be(0);
        Run("explain", "--cert", cert, "--admin", "--policy-dir", TestPolicy.RepositoryPolicies()).Exit.Should().Be(1);
    }

    [Fact]
    public void Explain_ZeroOrTwoActions_IsAUsageError()
    {
        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);

        var none = Run("explain", "--cert", cert);
        var two = Run("explain", "--cert", cert, "--connect", "--publish", "a");

        none.Exit.Should().NotBe(0);
        none.Err.Should().Contain("exactly one of");
        two.Exit.Should().NotBe(0);
    }

    [Fact]
    public void Explain_UnreadableCertificateOrInvalidPolicy_Exit2()
    {
        var garbage = _dir.Write("garbage.pem", "not a certificate");
        Run("explain", "--cert", garbage, "--connect", "--policy-dir", TestPolicy.RepositoryPolicies()).Exit.Should().Be(2);

        var cert = PolicyTestCerts.WritePem(PolicyTestCerts.Sensor001, _dir.Path);
        var policies = Path.Combine(_dir.Path, "policies");
        _dir.Write("policies/a.yaml", "rules: [");
        var (exit, _, error) = Run("explain", "--cert", cert, "--connect", "--policy-dir", policies);
        exit.Should().Be(2);
        error.Should().Contain("a.yaml:").And.Contain("policy lint");
    }
}
