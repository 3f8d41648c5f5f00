using System.Buffers;
using OmniBroker.Mqtt.Codec;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// Follows MQTT packet boundaries in one direction of a byte stream, reading only fixed headers (MQTT 5.0 §2.1.1,
/// Remaining Length §1.5.5) and the first two body bytes, so the WebSocket close can mirror how MQTT ended: the last
/// CONNACK or DISCONNECT and its reason code, a DISCONNECT from the client, or a fixed header no decoder accepts.
/// The engine's codec stays the only judge of packets; this never refuses anything.
/// </summary>
internal sealed class MqttPacketBoundaryTracker
{
    private const byte ConnAck = 2;
    private const byte Disconnect = 14;

    private State _state = State.Header;
    private byte _type;
    private readonly byte[] _length = new byte[MqttVariableByteInteger.MaxSize];
    private int _remaining;
    private int _lengthBytes;
    private int _bodyIndex;
    private byte _body0;
    private byte _body1;

    private enum State
    {
        Header,
        Length,
        Body,
        Broken,
    }

    /// <summary>Type of the last packet whose body was complete (0: none yet).</summary>
    public byte LastType { get; private set; }

    /// <summary>Remaining Length of that packet.</summary>
    public int LastLength { get; private set; }

    /// <summary>First and second body bytes of that packet (when it had them).</summary>
    public byte LastBody0 { get; private set; }

    public byte LastBody1 { get; private set; }

    /// <summary>A fixed header no MQTT version allows was seen (reserved type 0, Remaining Length over 4 bytes or not
    /// minimal).</summary>
    public bool Malformed => _state == State.Broken;

    public bool LastIsDisconnect => LastType == Disconnect;

    public bool LastIsConnAck => LastType == ConnAck;

    public void Observe(in ReadOnlySequence<byte> data)
    {
        foreach (var segment in data)
        {
            Observe(segment.Span);
        }
    }

    public void Observe(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (_state)
            {
                case State.Header:
                    _type = (byte)(data[i] >> 4);
                    if (_type == 0)
                    {
                        _state = State.Broken;
                        return;
                    }
                    _remaining = 0;
                    _lengthBytes = 0;
                    _state = State.Length;
                    i++;
                    break;

                case State.Length:
                    _length[_lengthBytes++] = data[i++];
                    var status = MqttVariableByteInteger.TryDecode(_length.AsSpan(0, _lengthBytes), out _remaining, out _);
                    if (status == OperationStatus.InvalidData)
                    {
                        _state = State.Broken;
                        return;
                    }
                    if (status == OperationStatus.Done)
                    {
                        _bodyIndex = 0;
                        _body0 = 0;
                        _body1 = 0;
                        if (_remaining == 0)
                        {
                            Complete();
                        }
                        else
                        {
                            _state = State.Body;
                        }
                    }
                    break;

                case State.Body:
                    if (_bodyIndex < 2)
                    {
                        // The first two body bytes hold what a close mirrors: CONNACK flags + reason, DISCONNECT reason.
                        if (_bodyIndex == 0)
                        {
                            _body0 = data[i];
                        }
                        else
                        {
                            _body1 = data[i];
                        }
                        i++;
                        _bodyIndex++;
                    }
                    else
                    {
                        var take = Math.Min(data.Length - i, _remaining - _bodyIndex);
                        i += take;
                        _bodyIndex += take;
                    }
                    if (_bodyIndex == _remaining)
                    {
                        Complete();
                    }
                    break;

                default:
                    return;
            }
        }
    }

    private void Complete()
    {
        LastType = _type;
        LastLength = _remaining;
        LastBody0 = _body0;
        LastBody1 = _body1;
        _state = State.Header;
    }
}
