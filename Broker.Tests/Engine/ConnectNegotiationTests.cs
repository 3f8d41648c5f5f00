using FluentAssertions;
using OmniBroker.Mqtt;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using Xunit;

namespace OmniBroker.Tests.Engine;

/// <summary>CONNECT negotiation as a pure function: every rule checked without a socket.</summary>
public sealed class ConnectNegotiationTests
{
    private static readonly MqttBrokerOptions s_options = new();

    private static ConnectNegotiation Negotiate(ConnectPacket connect, MqttBrokerOptions? options = null, ConnectIdentityState? identity = null) =>
        ConnectNegotiation.Negotiate(connect, options ?? s_options, identity ?? ConnectIdentityState.Valid, static () => "assigned-1");

    private static ConnectPacket V5(string clientId = "dev-1", MqttProperties? properties = null) =>
        new() { ProtocolVersion = MqttProtocolVersion.V500, ClientId = clientId, Properties = properties };

    [Fact]
    public void Negotiate_NoIdentityWhenRequired_RefusesNotAuthorized()
    {
        var result = Negotiate(V5(), identity: ConnectIdentityState.None);

        result.RefusalCode.Should().Be(MqttReasonCode.NotAuthorized);
    }

    [Fact]
    public void Negotiate_RevokedIdentity_RefusesWithTheReason()
    {
        var result = Negotiate(V5(), identity: new ConnectIdentityState(true, true, "revoked by CRL"));

        result.RefusalCode.Should().Be(MqttReasonCode.NotAuthorized);
        result.RefusalReason.Should().Contain("revoked by CRL");
    }

    [Fact]
    public void Negotiate_AuthenticationMethod_RefusesBadAuthenticationMethod()
    {
        var result = Negotiate(V5(properties: new MqttProperties { AuthenticationMethod = "SCRAM-SHA-1" }));

        result.RefusalCode.Should().Be(MqttReasonCode.BadAuthenticationMethod);
    }

    [Fact]
    public void Negotiate_EmptyClientIdV311PersistentSession_RefusesClientIdentifierNotValid()
    {
        var result = Negotiate(new ConnectPacket { ClientId = "", CleanStart = false });

        result.RefusalCode.Should().Be(MqttReasonCode.ClientIdentifierNotValid);
    }

    [Fact]
    public void Negotiate_EmptyClientIdV5_AssignsAndAnnouncesIt()
    {
        var result = Negotiate(V5(""));

        result.Refused.Should().BeFalse();
        result.ClientId.Should().Be("assigned-1");
        result.BuildConnAck(MqttProtocolVersion.V500, s_options, false).Properties!.AssignedClientIdentifier.Should().Be("assigned-1");
    }

    [Fact]
    public void Negotiate_ClientIdTooLong_Refuses()
    {
        var result = Negotiate(V5(new string('a', 200)), new MqttBrokerOptions { MaxClientIdLength = 100 });

        result.RefusalCode.Should().Be(MqttReasonCode.ClientIdentifierNotValid);
    }

    [Fact]
    public void Negotiate_InvalidWillTopic_ThrowsTopicNameInvalid()
    {
        var connect = V5();
        connect.Will = new WillMessage { Topic = "a/+/b" };

        var act = () => Negotiate(connect);

        act.Should().Throw<MqttProtocolException>().Which.ReasonCode.Should().Be(MqttReasonCode.TopicNameInvalid);
    }

    [Fact]
    public void Negotiate_RetainedWillWithoutRetain_RefusesRetainNotSupported()
    {
        var connect = V5();
        connect.Will = new WillMessage { Topic = "a/b", Retain = true };

        var result = Negotiate(connect, new MqttBrokerOptions { RetainAvailable = false });

        result.RefusalCode.Should().Be(MqttReasonCode.RetainNotSupported);
    }

    [Fact]
    public void Negotiate_KeepAliveAboveMaximum_ImposesServerKeepAlive()
    {
        var connect = V5();
        connect.KeepAliveSeconds = 600;

        var result = Negotiate(connect, new MqttBrokerOptions { MaximumKeepAlive = 60 });

        result.KeepAlive.Should().Be(60);
        result.BuildConnAck(MqttProtocolVersion.V500, s_options, false).Properties!.ServerKeepAlive.Should().Be(60);
    }

    [Fact]
    public void Negotiate_V311KeepAliveAboveMaximum_KeepsTheClientValue()
    {
        var result = Negotiate(new ConnectPacket { ClientId = "d", KeepAliveSeconds = 600 }, new MqttBrokerOptions { MaximumKeepAlive = 60 });

        result.KeepAlive.Should().Be(600);
        result.ServerKeepAlive.Should().BeNull();
    }

    [Fact]
    public void Negotiate_SessionExpiryAboveMaximum_CapsAndAnnouncesIt()
    {
        var result = Negotiate(V5(properties: new MqttProperties { SessionExpiryInterval = uint.MaxValue }),
            new MqttBrokerOptions { MaximumSessionExpiryInterval = 3600 });

        result.SessionExpiry.Should().Be(3600);
        result.BuildConnAck(MqttProtocolVersion.V500, s_options, true).Properties!.SessionExpiryInterval.Should().Be(3600);
    }

    [Fact]
    public void Negotiate_V311PersistentSession_ExpiresAfterTheConfiguredMaximum()
    {
        var result = Negotiate(new ConnectPacket { ClientId = "d", CleanStart = false }, new MqttBrokerOptions { MaximumSessionExpiryInterval = 99 });

        result.SessionExpiry.Should().Be(99);
    }

    [Theory]
    [InlineData(null, 32)]
    [InlineData((ushort)5, 5)]
    [InlineData((ushort)1000, 32)]
    public void Negotiate_ClientReceiveMaximum_BoundsTheOutboundWindow(ushort? receiveMaximum, int window)
    {
        var result = Negotiate(V5(properties: new MqttProperties { ReceiveMaximum = receiveMaximum, MaximumPacketSize = 4096 }));

        result.OutboundWindow.Should().Be(window);
        result.ClientMaximumPacketSize.Should().Be(4096);
    }

    [Fact]
    public void BuildConnAck_V311_HasNoProperties()
    {
        var result = Negotiate(new ConnectPacket { ClientId = "d" });

        var connAck = result.BuildConnAck(MqttProtocolVersion.V311, s_options, sessionPresent: true);

        connAck.Properties.Should().BeNull();
        connAck.SessionPresent.Should().BeTrue();
        connAck.ReasonCode.Should().Be(MqttReasonCode.Success);
    }
}
