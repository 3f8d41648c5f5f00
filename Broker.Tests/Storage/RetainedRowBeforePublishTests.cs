using FluentAssertions;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Storage;
using OmniBroker.Tests.Engine;
using Xunit;

namespace OmniBroker.Tests.Storage;

/// <summary>Retained messages streamed after SUBSCRIBE to a persistent session: no publisher would send them again
/// after a crash, so with strict durability the inflight row is committed before the PUBLISH leaves (checked by reading
/// the real SQLite file the moment each PUBLISH arrives).</summary>
public sealed class RetainedRowBeforePublishTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("omnibroker-retained-rows-").FullName;

    [Fact]
    public async Task RetainedAfterSubscribe_StrictStore_InflightRowCommittedBeforePublishArrives()
    {
        var path = Path.Combine(_directory, StorageOptions.FileName);
        await using var store = SqliteSessionStore.Open(new StorageOptions { Durability = StoreDurability.Strict }, path, NullLogger.Instance);
        await store.LoadAsync(CancellationToken.None);
        await using var server = await EngineServer.StartAsync(store: store);
        await using (var publisher = await server.ConnectAsync("pub"))
        {
            for (var i = 0; i < 20; i++)
            {
                // 0x10 No matching subscribers is a success: the message is retained.
                ((byte)(await publisher.PublishAsync($"state/{i}", $"s{i}", MqttQos.AtLeastOnce, retain: true))!.ReasonCode).Should().BeLessThan(0x80);
            }
        }

        await using var subscriber = await server.ConnectAsync("sub", sessionExpiry: 3600);
        await subscriber.SubscribeAsync("state/#", MqttQos.AtLeastOnce);
        using var reader = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        reader.Open();
        for (var i = 0; i < 20; i++)
        {
            // Not acknowledged: each stays in flight, and its row must already be on disk.
            var publish = await subscriber.ExpectPublishAsync(TimeSpan.FromSeconds(30));
            publish.Retain.Should().BeTrue();
            using var command = reader.CreateCommand();
            command.CommandText = "SELECT count(*) FROM messages WHERE client_id = 'sub' AND state = 1 AND packet_id = $p AND topic = $t";
            command.Parameters.AddWithValue("$p", (int)publish.PacketId);
            command.Parameters.AddWithValue("$t", publish.Topic);
            Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)
                .Should().Be(1, $"the row of retained {publish.Topic} (packet {publish.PacketId}) is committed before its PUBLISH is written");
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
