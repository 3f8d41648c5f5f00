using FluentAssertions;
using Xunit;

namespace OmniBroker.Tests.Interop;

/// <summary>Every test of the Eclipse Paho MQTT 3.1.1 interoperability suite (Interop/paho/client_test.py),
/// each in its own python3 process, against the real host through a TLS tunnel with a device certificate.</summary>
public sealed class PahoV311InteropTests(PahoInteropBroker broker) : IClassFixture<PahoInteropBroker>
{
    public static TheoryData<string> Tests =>
    [
        "testBasic", "test_retained_messages", "test_zero_length_clientid", "test_offline_message_queueing",
        "test_overlapping_subscriptions", "test_keepalive", "test_redelivery_on_reconnect", "test_subscribe_failure",
        "test_dollar_topics", "test_unsubscribe",
    ];

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task PahoSuite311_Test_Passes(string test)
    {
        var (result, log) = await broker.RunAsync("client_test", test);

        result.ExitCode.Should().Be(0, $"{test} must pass\n{result}\n{log}");
        result.Output.Should().Contain($"PAHO-RESULT client_test {test} passed");
    }
}

/// <summary>Every test of the Eclipse Paho MQTT 5.0 interoperability suite (Interop/paho/client_test5.py), each in
/// its own python3 process. test_subscribe_failure is run expecting 0x87 (Not authorized) instead of the suite's 0x80:
/// see run_paho_test.py.</summary>
public sealed class PahoV5InteropTests(PahoInteropBroker broker) : IClassFixture<PahoInteropBroker>
{
    public static TheoryData<string> Tests =>
    [
        "test_basic", "test_retained_message", "test_will_message", "test_zero_length_clientid",
        "test_offline_message_queueing", "test_overlapping_subscriptions", "test_keepalive", "test_redelivery_on_reconnect",
        "test_subscribe_failure", "test_dollar_topics", "test_unsubscribe", "test_session_expiry", "test_user_properties",
        "test_payload_format", "test_publication_expiry", "test_subscribe_options", "test_assigned_clientid",
        "test_subscribe_identifiers", "test_request_response", "test_client_topic_alias", "test_server_topic_alias",
        "test_maximum_packet_size", "test_server_keep_alive", "test_flow_control1", "test_flow_control2",
        "test_will_delay", "test_shared_subscriptions",
    ];

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task PahoSuite5_Test_Passes(string test)
    {
        var (result, log) = await broker.RunAsync("client_test5", test);

        result.ExitCode.Should().Be(0, $"{test} must pass\n{result}\n{log}");
        result.Output.Should().Contain($"PAHO-RESULT client_test5 {test} passed");
    }
}

/// <summary>The Theory lists above are the suites' complete test lists: a test added to a vendored suite (or dropped
/// from a list here) fails this check instead of silently not running.</summary>
public sealed class PahoSuiteListTests
{
    [Theory]
    [InlineData("client_test.py", 10)]
    [InlineData("client_test5.py", 27)]
    public void PahoSuite_TestList_MatchesTheVendoredFile(string file, int expected)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Interop", "paho", file);
        var inFile = File.ReadAllLines(path)
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("def test", StringComparison.Ordinal))
            .Select(l => l["def ".Length..l.IndexOf('(', StringComparison.Ordinal)])
            .ToArray();
        IEnumerable<object[]> rows = file == "client_test.py" ? PahoV311InteropTests.Tests : PahoV5InteropTests.Tests;
        var listed = rows.Select(row => (string)row[0]).ToArray();

        inFile.Should().HaveCount(expected);
        listed.Should().BeEquivalentTo(inFile);
        foreach (var licence in new[] { "LICENSE", "NOTICE", "about.html", "epl-v10", "edl-v10", "README.md" })
        {
            File.Exists(Path.Combine(AppContext.BaseDirectory, "Interop", "paho", licence)).Should().BeTrue(licence);
        }
    }
}
