using FluentAssertions;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Host.Cli;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Storage;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Storage;

/// <summary><c>omnibroker state inspect|compact</c> on a real state database written by the SQLite store.</summary>
public sealed class StateCliTests : IDisposable
{
    private readonly string _directory = TempDirectory.Create("omnibroker-state-cli");

    [Fact]
    public async Task StateInspect_StoreWithSessionsAndMessages_PrintsCountsAndSize()
    {
        await WriteStateAsync(sessions: 3, messagesPerSession: 10);

        var (code, output) = await RunAsync("state", "inspect", "--data-dir", _directory);

        code.Should().Be(0, output);
        output.Should().Contain("sessions       3").And.Contain("subscriptions  3").And.Contain("queued         30")
            .And.Contain("retained       1").And.Contain("per message");
    }

    [Fact]
    public async Task StateCompact_AfterDeletes_ShrinksTheFile()
    {
        await WriteStateAsync(sessions: 20, messagesPerSession: 200, deleteSessions: true);

        var (code, output) = await RunAsync("state", "compact", "--data-dir", _directory);

        code.Should().Be(0, output);
        var sizes = output.Split(": ")[1].Split(" -> ");
        long.Parse(sizes[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture).Should()
            .BeLessThan(long.Parse(sizes[0], System.Globalization.CultureInfo.InvariantCulture), output);
        (await RunAsync("state", "inspect", "--data-dir", _directory)).Output.Should().Contain("sessions       0");
    }

    [Fact]
    public async Task StateCompact_WhileTheStoreIsOpen_RefusedNamingTheFile()
    {
        await WriteStateAsync(sessions: 1, messagesPerSession: 1);
        var path = Path.Combine(_directory, StorageOptions.FileName);
        await using var store = SqliteSessionStore.Open(new StorageOptions(), path, NullLogger.Instance);

        var (code, output) = await RunAsync("state", "compact", "--data-dir", _directory);

        code.Should().Be(1);
        output.Should().Contain($"state database {path}").And.Contain("in use");
    }

    [Fact]
    public async Task StateInspect_MissingDatabase_ExitsOneNamingTheFile()
    {
        var (code, output) = await RunAsync("state", "inspect", "--data-dir", Path.Combine(_directory, "nothing"));

        code.Should().Be(1);
        output.Should().Contain("state.db: does not exist");
    }

    public void Dispose() => TempDirectory.Delete(_directory);

    private async Task WriteStateAsync(int sessions, int messagesPerSession, bool deleteSessions = false)
    {
        await using var store = SqliteSessionStore.Open(new StorageOptions(), Path.Combine(_directory, StorageOptions.FileName), NullLogger.Instance);
        await store.LoadAsync(CancellationToken.None);
        long last = 0;
        for (var s = 0; s < sessions; s++)
        {
            var clientId = $"device-{s}";
            store.Append(new SessionSaved(new StoredSession(clientId, 3600, null, 5, null, null, 0)));
            store.Append(new SubscriptionSaved(clientId, new StoredSubscription("t/#", 1, false, false, 0, 0)));
            for (var m = 0; m < messagesPerSession; m++)
            {
                last = store.Append(new MessageQueued(clientId, m + 1, new StoredMessage("t/x", new byte[64], 1, false, "pub", null), 1, false, null));
            }
        }
        last = store.Append(new RetainedSaved(new StoredMessage("t/state", new byte[8], 1, true, "pub", null)));
        await store.WaitCommittedAsync(last);
        if (deleteSessions)
        {
            for (var s = 0; s < sessions; s++)
            {
                last = store.Append(new SessionDeleted($"device-{s}"));
            }
            last = store.Append(new RetainedDeleted("t/state"));
            await store.WaitCommittedAsync(last);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var code = await CliCommands.InvokeAsync(args, output, output);
        return (code, output.ToString());
    }
}
