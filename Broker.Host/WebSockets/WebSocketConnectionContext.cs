using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// The MQTT connection carried by one WebSocket, as the engine sees it: the same <see cref="ConnectionContext"/> shape
/// Kestrel hands <c>MqttConnectionHandler</c> on the TLS listener, with the identity feature taken from the HTTP
/// connection the WebSocket was accepted on.
/// </summary>
internal sealed class WebSocketConnectionContext : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature,
    IConnectionEndPointFeature, IConnectionLifetimeNotificationFeature
{
    private readonly CancellationTokenSource _closed = new();
    private readonly CancellationTokenSource _closeRequested;
    private readonly Action<ConnectionAbortedException> _abort;
    private IDictionary<object, object?>? _items;

    public WebSocketConnectionContext(string connectionId, IDuplexPipe transport, EndPoint? remote, EndPoint? local,
        CancellationToken closeRequested, Action<ConnectionAbortedException> abort)
    {
        ConnectionId = connectionId;
        Transport = transport;
        RemoteEndPoint = remote;
        LocalEndPoint = local;
        _abort = abort;
        _closeRequested = CancellationTokenSource.CreateLinkedTokenSource(closeRequested);
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<IConnectionLifetimeNotificationFeature>(this);
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public CancellationToken ConnectionClosedRequested
    {
        get => _closeRequested.Token;
        set => throw new NotSupportedException();
    }

    public void RequestClose()
    {
        try
        {
            _closeRequested.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _abort(abortReason);
        MarkClosed();
    }

    public override void Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application."));

    /// <summary>Fires <see cref="ConnectionClosed"/> (once the WebSocket is gone).</summary>
    public void MarkClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public override ValueTask DisposeAsync()
    {
        _closeRequested.Dispose();
        _closed.Dispose();
        return ValueTask.CompletedTask;
    }
}
