using System.Buffers;
using OmniBroker.Auth;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// PROXY protocol v2 header (Broker.Auth/Connections/ProxyProtocolMiddleware.cs, <c>ProxyProtocolV2.TryRead</c>), from
/// one segment and from 5-byte segments; a decoded header must end inside the input at its announced length.
/// Expected: <see cref="ProxyProtocolException"/>.
/// </summary>
internal static class ProxyProtocolTarget
{
    public static void Run(byte[] data)
    {
        Decode(new ReadOnlySequence<byte>(data));
        if (data.Length > 5)
        {
            Decode(SegmentedSequence.FixedSegments(data, 5));
        }
    }

    private static void Decode(ReadOnlySequence<byte> input)
    {
        try
        {
            if (ProxyProtocolV2.TryRead(input, out ProxyHeader header, out SequencePosition end))
            {
                long length = input.Slice(input.Start, end).Length;
                if (length != header.Length || length > input.Length)
                {
                    throw new InvalidOperationException($"header of {header.Length} bytes ends at {length} of {input.Length}");
                }
                _ = header.Source?.ToString();
                _ = header.Destination?.ToString();
            }
        }
        catch (ProxyProtocolException)
        {
            // The documented refusal of a connection without a valid header.
        }
    }
}
