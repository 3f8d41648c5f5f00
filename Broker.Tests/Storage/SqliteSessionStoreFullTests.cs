using FluentAssertions;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Storage;
using Xunit;

namespace OmniBroker.Tests.Storage;

/// <summary>The store on a real SQLite file that fills up (Storage:MaxSizeMegabytes): what a waiter is told must match
/// what is on disk, however late it asks.</summary>
public sealed class SqliteSessionStoreFullTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("omnibroker-store-full-").FullName;

    [Fact]
    public async Task WaitCommitted_AskedAfterPartlyWrittenBatch_FailsForEveryPositionNotOnDisk()
    {
        var path = Path.Combine(_directory, StorageOptions.FileName);
        var positions = new List<(long Sequence, long Position)>();
        await using (var store = SqliteSessionStore.Open(new StorageOptions { Durability = StoreDurability.Strict, MaxSizeMegabytes = 1 }, path, NullLogger.Instance))
        {
            await store.LoadAsync(CancellationToken.None);
            store.Append(new SessionSaved(new StoredSession("sub", 3600, null, 5, null, null, 0)));
            // 40 x 60 kB cannot fit in 1 MiB: the batches that hit the limit are written in part.
            for (var i = 1; i <= 40; i++)
            {
                var position = store.Append(new MessageQueued("sub", i, new StoredMessage("t/x", new byte[60_000], 1, false, "pub", null), 1, false, null));
                positions.Add((i, position));
            }
            await WaitSettledAsync(store, positions[^1].Position);

            // Asked only now, after the writer finished with every batch (as a connection's releaser may).
            var told = new Dictionary<long, bool>();
            foreach (var (sequence, position) in positions)
            {
                try
                {
                    await store.WaitCommittedAsync(position);
                    told[sequence] = true;
                }
                catch (StoreUnavailableException)
                {
                    told[sequence] = false;
                }
            }
            told.Values.Should().Contain(false, "1 MiB cannot hold 40 x 60 kB");
            await store.DisposeAsync();

            await using var reopened = SqliteSessionStore.Open(new StorageOptions(), path, NullLogger.Instance);
            var state = await reopened.LoadAsync(CancellationToken.None);
            var onDisk = state.Sessions.Single(s => s.Session.ClientId == "sub").Messages.Select(m => m.Sequence).ToHashSet();
            onDisk.Should().NotBeEmpty("what fits is kept");
            told.Where(t => t.Value).Select(t => t.Key).Should().BeSubsetOf(onDisk, "a position reported committed is on disk");
        }
    }

    /// <summary>Waits (bounded) until the commit holding <paramref name="position"/> is decided, either way.</summary>
    private static async Task WaitSettledAsync(SqliteSessionStore store, long position)
    {
        try
        {
            await store.WaitCommittedAsync(position).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (StoreUnavailableException)
        {
            // Decided: written in part.
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
