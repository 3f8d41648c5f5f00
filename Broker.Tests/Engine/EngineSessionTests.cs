using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Sessions, wills, takeover, keep alive and connection lifetime through the real connection handler.</summary>
public sealed class EngineSessionTests
{
    private static readonly DateTimeOffset s_start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static uint? Expiry(MqttProtocolVersion version, uint seconds) => version == MqttProtocolVersion.V500 ? seconds : null;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task PersistentSession_Reconnect_RedeliversUnacknowledgedWithDupThenQueued(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        var subscriber = await server.ConnectAsync("device", version, cleanStart: false, sessionExpiry: Expiry(version, 300));
        await subscriber.SubscribeAsync("cmd/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub", version);
        await publisher.PublishAsync("cmd/1", "one", MqttQos.AtLeastOnce);
        var first = await subscriber.ExpectPublishAsync();
        first.Dup.Should().BeFalse();

        subscriber.Abort();
        await subscriber.DisposeAsync();
        await WaitUntilAsync(() => server.Broker.GetConnectedClients().All(c => c.ClientId != "device"), "the server saw the close");
        await publisher.PublishAsync("cmd/2", "two", MqttQos.AtLeastOnce);

        var (resumed, connAck) = await RawMqttClient.ConnectAsync(server.Port,
            RawMqttClient.Connect("device", version, cleanStart: false, sessionExpiry: Expiry(version, 300)));
        await using var _ = resumed;
        connAck.SessionPresent.Should().BeTrue();

        var redelivered = await resumed.ExpectPublishAsync();
        RawMqttClient.PayloadText(redelivered).Should().Be("one");
        redelivered.Dup.Should().BeTrue("[MQTT-4.4.0-1] resent with DUP=1");
        redelivered.PacketId.Should().Be(first.PacketId, "resent with the original packet identifier");
        var queued = await resumed.ExpectPublishAsync();
        RawMqttClient.PayloadText(queued).Should().Be("two");
        queued.Dup.Should().BeFalse();
        await AckAsync(resumed, redelivered);
        await AckAsync(resumed, queued);
        await ExpectMarkerNextAsync(resumed, publisher, "cmd/marker", "each message is delivered once more, no more");
    }

    [Fact]
    public async Task PersistentSession_ReconnectInPubRecState_ResendsPubRel()
    {
        await using var server = await EngineServer.StartAsync();
        var subscriber = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 300);
        await subscriber.SubscribeAsync("q2/#", MqttQos.ExactlyOnce);
        await using var publisher = await server.ConnectAsync("pub");
        await publisher.PublishAsync("q2/1", "exactly", MqttQos.ExactlyOnce);
        var publish = await subscriber.ExpectPublishAsync();
        await subscriber.SendAsync(new PubAckPacket(MqttPacketType.PubRec) { PacketId = publish.PacketId });
        await subscriber.ExpectAckAsync(MqttPacketType.PubRel, publish.PacketId);

        subscriber.Abort();
        await subscriber.DisposeAsync();
        await WaitUntilAsync(() => server.Broker.GetConnectedClients().All(c => c.ClientId != "device"), "the server saw the close");

        var (resumed, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("device", cleanStart: false, sessionExpiry: 300));
        await using var _ = resumed;
        connAck.SessionPresent.Should().BeTrue();
        await resumed.ExpectAckAsync(MqttPacketType.PubRel, publish.PacketId);
        await resumed.SendAsync(new PubAckPacket(MqttPacketType.PubComp) { PacketId = publish.PacketId });
        await ExpectMarkerNextAsync(resumed, publisher, "q2/marker", "the message itself is not sent again after PUBREC");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task CleanStart_ExistingSession_IsDiscarded(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        var subscriber = await server.ConnectAsync("device", version, cleanStart: false, sessionExpiry: Expiry(version, 300));
        await subscriber.SubscribeAsync("c/#", MqttQos.AtLeastOnce);
        await subscriber.DisconnectAsync();
        await subscriber.WaitForCloseAsync();
        await subscriber.DisposeAsync();
        server.Broker.SessionCount.Should().Be(1);

        var (fresh, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("device", version, cleanStart: true));
        await using var _ = fresh;

        connAck.SessionPresent.Should().BeFalse();
        server.Broker.SubscriptionCount.Should().Be(0);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Takeover_SameClientId_FirstConnectionClosedSecondWorks(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var first = await server.ConnectAsync("same", version);
        await using var second = await server.ConnectAsync("same", version);

        var beforeClose = await first.WaitForCloseAsync();

        if (version == MqttProtocolVersion.V500)
        {
            beforeClose.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
                .Which.ReasonCode.Should().Be(MqttReasonCode.SessionTakenOver);
        }
        else
        {
            beforeClose.Should().BeEmpty();
        }
        await second.SubscribeAsync("still/here");
        await second.PublishAsync("still/here", "ok");
        RawMqttClient.PayloadText(await second.ExpectPublishAsync()).Should().Be("ok");
        server.Logs.WithEventId(1003).Should().ContainSingle();
        server.Broker.GetConnectedClients().Should().ContainSingle(c => c.ClientId == "same");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_AbruptClose_IsPublished(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var watcher = await server.ConnectAsync("watcher", version);
        await watcher.SubscribeAsync("status/#", MqttQos.AtLeastOnce);
        var device = await server.ConnectAsync("device", version, will: Will("status/device", "offline", MqttQos.AtLeastOnce));

        device.Abort();
        await device.DisposeAsync();

        var will = await watcher.ExpectPublishAsync();
        will.Topic.Should().Be("status/device");
        RawMqttClient.PayloadText(will).Should().Be("offline");
        will.Qos.Should().Be(MqttQos.AtLeastOnce);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttReasonCode.Success, false)]
    [InlineData(MqttProtocolVersion.V500, MqttReasonCode.Success, false)]
    [InlineData(MqttProtocolVersion.V500, MqttReasonCode.DisconnectWithWillMessage, true)]
    public async Task Will_Disconnect_PublishedOnlyWhenAsked(MqttProtocolVersion version, MqttReasonCode reason, bool published)
    {
        await using var server = await EngineServer.StartAsync();
        await using var watcher = await server.ConnectAsync("watcher", version);
        await watcher.SubscribeAsync("status/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub", version);
        await using var device = await server.ConnectAsync("device", version, will: Will("status/device", "offline"));

        await device.DisconnectAsync(reason);
        (await device.WaitForCloseAsync()).Should().BeEmpty("the server does not answer a DISCONNECT");

        if (published)
        {
            RawMqttClient.PayloadText(await watcher.ExpectPublishAsync()).Should().Be("offline");
        }
        else
        {
            await ExpectMarkerNextAsync(watcher, publisher, "status/marker", "DISCONNECT 0x00 discards the will [MQTT-3.14.4-3]");
        }
    }

    [Fact]
    public async Task Will_Denied_IsNotPublished()
    {
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { PublishPrefixes = ["allowed/"] } };
        await using var server = await EngineServer.StartAsync(authorizer: authorizer);
        await using var watcher = await server.ConnectAsync("watcher");
        await watcher.SubscribeAsync("#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");
        var device = await server.ConnectAsync("device", will: Will("forbidden/will", "x"));

        device.Abort();
        await device.DisposeAsync();
        await server.Logs.WaitForAsync(l => l.EventId.Id == 1104);

        await ExpectMarkerNextAsync(watcher, publisher, "allowed/marker", "a will goes through the client's publish rights");
    }

    [Fact]
    public async Task WillDelay_PublishedAfterDelay_CancelledByReconnect()
    {
        var time = new ManualTimeProvider(s_start);
        await using var server = await EngineServer.StartAsync(timeProvider: time);
        await using var watcher = await server.ConnectAsync("watcher");
        await watcher.SubscribeAsync("status/#", MqttQos.AtLeastOnce);
        await using var publisher = await server.ConnectAsync("pub");

        // Reconnecting within the delay cancels the will [MQTT-3.1.3-9].
        var device = await server.ConnectAsync("d1", cleanStart: false, sessionExpiry: 600, will: Will("status/d1", "d1-gone", delay: 30));
        device.Abort();
        await device.DisposeAsync();
        await WaitUntilAsync(() => server.Broker.GetConnectedClients().All(c => c.ClientId != "d1"), "the server saw d1 close");
        await using (var back = await server.ConnectAsync("d1", cleanStart: false, sessionExpiry: 600))
        {
            time.Advance(TimeSpan.FromSeconds(40));
            await ExpectMarkerNextAsync(watcher, publisher, "status/marker1", "the reconnect cancelled the delayed will");
        }

        var other = await server.ConnectAsync("d2", cleanStart: false, sessionExpiry: 600, will: Will("status/d2", "d2-gone", delay: 30));
        other.Abort();
        await other.DisposeAsync();
        await WaitUntilAsync(() => server.Broker.GetConnectedClients().All(c => c.ClientId != "d2"), "the server saw d2 close");
        await ExpectMarkerNextAsync(watcher, publisher, "status/marker2", "the will waits for its delay");

        time.Advance(TimeSpan.FromSeconds(31));

        RawMqttClient.PayloadText(await watcher.ExpectPublishAsync()).Should().Be("d2-gone");
    }

    [Fact]
    public async Task SessionExpiry_Elapsed_SessionRemovedAndNotResumed()
    {
        var time = new ManualTimeProvider(s_start);
        await using var server = await EngineServer.StartAsync(timeProvider: time);
        var device = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 10);
        await device.SubscribeAsync("x/#", MqttQos.AtLeastOnce);
        await device.DisconnectAsync();
        await device.WaitForCloseAsync();
        await device.DisposeAsync();
        await WaitUntilAsync(() => server.Broker.GetConnectedClients().Count == 0, "the server saw the close");
        server.Broker.SessionCount.Should().Be(1);

        time.Advance(TimeSpan.FromSeconds(11));

        server.Broker.SessionCount.Should().Be(0);
        server.Broker.SubscriptionCount.Should().Be(0);
        server.Logs.WithEventId(1300).Should().ContainSingle();
        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("device", cleanStart: false, sessionExpiry: 10));
        await using var _ = again;
        connAck.SessionPresent.Should().BeFalse();
    }

    [Fact]
    public async Task MessageExpiry_WhileQueued_ExpiredDroppedRemainingForwardedReduced()
    {
        var time = new ManualTimeProvider(s_start);
        await using var server = await EngineServer.StartAsync(timeProvider: time);
        var device = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 3600);
        await device.SubscribeAsync("e/#", MqttQos.AtLeastOnce);
        await device.DisconnectAsync();
        await device.WaitForCloseAsync();
        await device.DisposeAsync();
        await using var publisher = await server.ConnectAsync("pub");
        await publisher.PublishAsync("e/short", "short", MqttQos.AtLeastOnce, properties: new MqttProperties { MessageExpiryInterval = 10 });
        await publisher.PublishAsync("e/long", "long", MqttQos.AtLeastOnce, properties: new MqttProperties { MessageExpiryInterval = 100 });

        time.Advance(TimeSpan.FromSeconds(20));

        await using var back = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 3600);
        var received = await back.ExpectPublishAsync();
        RawMqttClient.PayloadText(received).Should().Be("long");
        received.Properties!.MessageExpiryInterval.Should().Be(80u, "the forwarded interval is reduced by the time spent queued");
        server.Broker.MessagesDropped.Should().Be(1);
        server.Logs.WithEventId(1207).Should().ContainSingle().Which.Value("Reason").Should().Be("expired");
    }

    [Fact]
    public async Task OfflineQueue_Full_OldestQos0DroppedThenOverflowRefusedWithQuotaExceeded()
    {
        await using var server = await EngineServer.StartAsync(o => o.MaxQueuedMessagesPerSession = 3);
        var device = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 3600);
        await device.SubscribeAsync("q/#", MqttQos.AtLeastOnce);
        await device.DisconnectAsync();
        await device.WaitForCloseAsync();
        await device.DisposeAsync();
        await using var publisher = await server.ConnectAsync("pub");

        await publisher.PublishAsync("q/0", "zero");
        await publisher.PublishAsync("q/1", "one", MqttQos.AtLeastOnce);
        await publisher.PublishAsync("q/2", "two", MqttQos.AtLeastOnce);
        (await publisher.PublishAsync("q/3", "three", MqttQos.AtLeastOnce))!.ReasonCode.Should().Be(MqttReasonCode.Success);
        var overflow = await publisher.PublishAsync("q/4", "four", MqttQos.AtLeastOnce);

        overflow!.ReasonCode.Should().Be(MqttReasonCode.QuotaExceeded, "an overflow the broker cannot absorb is refused before acknowledging");
        server.Broker.MessagesDropped.Should().Be(2);
        server.Logs.WithEventId(1207).Select(l => l.Value("Reason")).Should().BeEquivalentTo(["queue_full", "overflow"]);
        await using var back = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 3600);
        var payloads = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var publish = await back.ExpectPublishAsync();
            payloads.Add(RawMqttClient.PayloadText(publish));
            await AckAsync(back, publish);
        }
        payloads.Should().Equal("one", "two", "three");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task KeepAlive_SilentClient_ClosedAfterOneAndAHalfPeriods(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        await using var silent = await server.ConnectAsync("silent", version, keepAlive: 1);
        await using var chatty = await server.ConnectAsync("chatty", version, keepAlive: 1);
        var started = DateTime.UtcNow;

        var keepChattyAlive = Task.Run(async () =>
        {
            for (var i = 0; i < 8 && !silent.IsClosed; i++)
            {
                await Task.Delay(400);
                await chatty.SendAsync(PingReqPacket.Instance);
            }
        });
        var beforeClose = await silent.WaitForCloseAsync(TimeSpan.FromSeconds(6));
        await keepChattyAlive;

        (DateTime.UtcNow - started).Should().BeGreaterThan(TimeSpan.FromSeconds(1.2), "1.5 x keep alive is allowed");
        if (version == MqttProtocolVersion.V500)
        {
            beforeClose.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
                .Which.ReasonCode.Should().Be(MqttReasonCode.KeepAliveTimeout);
        }
        else
        {
            beforeClose.Should().BeEmpty();
        }
        chatty.IsClosed.Should().BeFalse("a client that sends PINGREQ stays connected");
        server.Logs.WithEventId(1005).Should().ContainSingle();
    }

    [Fact]
    public async Task ServerKeepAlive_Maximum_AnnouncedAndEnforced()
    {
        await using var server = await EngineServer.StartAsync(o => o.MaximumKeepAlive = 1);
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("c", keepAlive: 0));
        await using var _ = client;

        connAck.Properties!.ServerKeepAlive.Should().Be(1);
        (await client.WaitForCloseAsync(TimeSpan.FromSeconds(5))).OfType<DisconnectPacket>().Single().ReasonCode
            .Should().Be(MqttReasonCode.KeepAliveTimeout);
    }

    [Fact]
    public async Task ConnectTimeout_NoConnect_ConnectionClosed()
    {
        await using var server = await EngineServer.StartAsync(o => o.ConnectTimeout = TimeSpan.FromMilliseconds(300));
        await using var idle = await RawMqttClient.OpenAsync(server.Port);

        (await idle.WaitForCloseAsync()).Should().BeEmpty();
        server.Logs.WithEventId(1006).Should().ContainSingle();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, true, MqttReasonCode.Success)]
    [InlineData(MqttProtocolVersion.V311, false, MqttReasonCode.ClientIdentifierNotValid)]
    [InlineData(MqttProtocolVersion.V500, false, MqttReasonCode.Success)]
    public async Task EmptyClientId_AssignedOrRefused(MqttProtocolVersion version, bool cleanStart, MqttReasonCode expected)
    {
        await using var server = await EngineServer.StartAsync();

        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("", version, cleanStart));
        await using var _ = client;

        connAck.ReasonCode.Should().Be(expected);
        if (version == MqttProtocolVersion.V500)
        {
            connAck.Properties!.AssignedClientIdentifier.Should().NotBeNullOrEmpty();
            server.Broker.GetConnectedClients().Single().ClientId.Should().Be(connAck.Properties.AssignedClientIdentifier);
        }
        if (expected != MqttReasonCode.Success)
        {
            (await client.WaitForCloseAsync()).Should().BeEmpty();
        }
    }

    [Fact]
    public async Task ConnAck_V5_AnnouncesServerCapabilities()
    {
        await using var server = await EngineServer.StartAsync(o =>
        {
            o.ReceiveMaximum = 10;
            o.TopicAliasMaximum = 8;
            o.MaximumPacketSize = 65536;
            o.MaximumSessionExpiryInterval = 60;
        });

        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("caps", cleanStart: true, sessionExpiry: 3600));
        await using var _ = client;

        var p = connAck.Properties!;
        p.ReceiveMaximum.Should().Be(10);
        p.TopicAliasMaximum.Should().Be(8);
        p.MaximumPacketSize.Should().Be(65536u);
        p.RetainAvailable.Should().Be(1);
        p.WildcardSubscriptionAvailable.Should().Be(1);
        p.SharedSubscriptionAvailable.Should().Be(1);
        p.SubscriptionIdentifiersAvailable.Should().Be(1);
        p.SessionExpiryInterval.Should().Be(60u, "the requested interval was capped");
        p.AssignedClientIdentifier.Should().BeNull();
    }

    [Fact]
    public async Task Shutdown_ConnectedClients_ReceiveServerShuttingDown()
    {
        await using var server = await EngineServer.StartAsync();
        await using var v5 = await server.ConnectAsync("v5");
        await using var v3 = await server.ConnectAsync("v3", MqttProtocolVersion.V311);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));

        await server.Broker.StopAsync(cts.Token);

        (await v5.WaitForCloseAsync()).Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
            .Which.ReasonCode.Should().Be(MqttReasonCode.ServerShuttingDown);
        (await v3.WaitForCloseAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task DisconnectClient_Admin_ClosesOnlyThatClient()
    {
        await using var server = await EngineServer.StartAsync();
        await using var target = await server.ConnectAsync("target");
        await using var other = await server.ConnectAsync("other");
        server.Broker.GetConnectedClients().Select(c => c.ClientId).Should().Equal("other", "target");

        server.Broker.DisconnectClient("target", MqttReasonCode.AdministrativeAction).Should().BeTrue();
        server.Broker.DisconnectClient("nobody", MqttReasonCode.AdministrativeAction).Should().BeFalse();

        (await target.WaitForCloseAsync()).OfType<DisconnectPacket>().Single().ReasonCode.Should().Be(MqttReasonCode.AdministrativeAction);
        (await other.PingAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task IdentityRevoked_WhileConnected_Disconnected0x98AndSessionDiscarded()
    {
        var identities = new List<FakeIdentity>();
        await using var server = await EngineServer.StartAsync(o => o.RequireClientIdentity = true, identity: () =>
        {
            var identity = new FakeIdentity();
            lock (identities)
            {
                identities.Add(identity);
            }
            return identity;
        });
        await using var device = await server.ConnectAsync("device", cleanStart: false, sessionExpiry: 3600);
        await device.SubscribeAsync("d/#", MqttQos.AtLeastOnce);
        server.Broker.GetConnectedClients().Single().Certificate.Should().NotBeNull();

        lock (identities)
        {
            identities.Single().Revoke("revoked by CRL");
        }

        (await device.WaitForCloseAsync()).OfType<DisconnectPacket>().Single().ReasonCode.Should().Be(MqttReasonCode.AdministrativeAction);
        server.Logs.WithEventId(1007).Should().ContainSingle();
        await WaitUntilAsync(() => server.Broker.SessionCount == 0, "the session was discarded");
        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("device", cleanStart: false, sessionExpiry: 3600));
        await using var _ = again;
        connAck.SessionPresent.Should().BeFalse("a revoked identity must not resume its session");
    }

    private sealed class FakeIdentity : IClientIdentityFeature
    {
        private static readonly X509Certificate2 s_certificate = CreateCertificate();
        private readonly CancellationTokenSource _revoked = new();

        public X509Certificate2 Certificate => s_certificate;

        public IReadOnlyList<X509Certificate2> Chain => [s_certificate];

        public CancellationToken IdentityRevoked => _revoked.Token;

        public string? RevocationReason { get; private set; }

        public void Revoke(string reason)
        {
            RevocationReason = reason;
            _revoked.Cancel();
        }

        private static X509Certificate2 CreateCertificate()
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=device", key, HashAlgorithmName.SHA256);
            return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        }
    }
}
