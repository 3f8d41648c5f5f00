using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Mqtt.Abstractions;

/// <summary>
/// Serves request/response on broker-reserved topics (<c>$omnibroker/...</c>, MQTT 5.0 §4.10): a PUBLISH whose
/// topic <see cref="Handles"/> accepts is acknowledged and given to <see cref="Handle"/> instead of being routed or
/// checked against publish rights; the handler decides who may use it. Its reply goes to the requesting client
/// only, on the request's Response Topic with its Correlation Data, and never through routing: no other client can
/// receive it and the requester cannot use it to publish elsewhere. Registered from the host
/// (<c>MqttBroker.ReservedTopicHandler</c>).
/// </summary>
public interface IReservedTopicHandler
{
    /// <summary>Cheap and synchronous: called for every PUBLISH whose topic starts with '$'.</summary>
    bool Handles(string topic);

    /// <summary>Called on the connection's read loop: start the work and return; answer with
    /// <see cref="ReservedTopicRequest.Reply"/> from any thread.</summary>
    void Handle(ReservedTopicRequest request);
}

/// <summary>One request on a reserved topic. <see cref="Reply"/> is a no-op when the request has no Response Topic
/// or the client has gone.</summary>
public sealed class ReservedTopicRequest(
    string clientId,
    X509Certificate2? certificate,
    IReadOnlyList<X509Certificate2> chain,
    string topic,
    byte[] payload,
    string? responseTopic,
    byte[]? correlationData,
    string? contentType,
    Action<ReservedTopicReply> reply)
{
    public string ClientId { get; } = clientId;

    /// <summary>The client's validated certificate (from the connection's identity feature).</summary>
    public X509Certificate2? Certificate { get; } = certificate;

    /// <summary>The chain validated at the handshake, leaf first.</summary>
    public IReadOnlyList<X509Certificate2> Chain { get; } = chain;

    public string Topic { get; } = topic;

    public byte[] Payload { get; } = payload;

    public string? ResponseTopic { get; } = responseTopic;

    public byte[]? CorrelationData { get; } = correlationData;

    public string? ContentType { get; } = contentType;

    public void Reply(ReservedTopicReply response) => reply(response);
}

/// <summary>The response: payload, content type and user properties (e.g. status, reason).</summary>
public sealed record ReservedTopicReply(byte[] Payload, string? ContentType, IReadOnlyList<KeyValuePair<string, string>>? UserProperties);
