using System.Buffers;

namespace OmniBroker.Fuzz;

/// <summary>
/// Builds multi-segment <see cref="ReadOnlySequence{T}"/> inputs, the shape a pipe hands a decoder when
/// a packet arrives across several reads: every field may straddle a segment boundary. Shared by the fuzz targets
/// and the decoder tests (Broker.Tests references this project).
/// </summary>
public static class SegmentedSequence
{
    /// <summary>Each byte in its own segment: every multi-byte field straddles a boundary.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(ReadOnlySpan<byte> data)
    {
        var sizes = new int[data.Length];
        Array.Fill(sizes, 1);
        return Create(data, sizes);
    }

    /// <summary>Segments of <paramref name="size"/> bytes (the last one shorter), as a pipe fed by fixed-size reads.</summary>
    public static ReadOnlySequence<byte> FixedSegments(ReadOnlySpan<byte> data, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var sizes = new int[(data.Length + size - 1) / size];
        for (int i = 0; i < sizes.Length; i++)
        {
            sizes[i] = Math.Min(size, data.Length - i * size);
        }
        return Create(data, sizes);
    }

    /// <summary>Segments of random sizes between 1 and <paramref name="maxSegment"/> bytes, reproducible from the seed.</summary>
    public static ReadOnlySequence<byte> RandomSegments(ReadOnlySpan<byte> data, int seed, int maxSegment = 7)
    {
        var random = new Random(seed);
        var sizes = new List<int>();
        for (int left = data.Length; left > 0;)
        {
            int size = Math.Min(left, random.Next(1, maxSegment + 1));
            sizes.Add(size);
            left -= size;
        }
        return Create(data, sizes);
    }

    /// <summary>Segments of exactly the given sizes; a zero size inserts an empty segment.</summary>
    public static ReadOnlySequence<byte> Create(ReadOnlySpan<byte> data, IReadOnlyList<int> sizes)
    {
        if (sizes.Sum() != data.Length)
        {
            throw new ArgumentException($"segment sizes add up to {sizes.Sum()}, not {data.Length}", nameof(sizes));
        }
        if (sizes.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        // Each segment gets its own array so no segment can read past its end into the next one.
        Segment first = new(data[..sizes[0]].ToArray(), 0);
        Segment last = first;
        int offset = sizes[0];
        for (int i = 1; i < sizes.Count; i++)
        {
            last = last.Append(data.Slice(offset, sizes[i]).ToArray());
            offset += sizes[i];
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary><paramref name="count"/> segments that all share <paramref name="chunk"/>: a huge sequence (past the
    /// largest Remaining Length) without allocating it.</summary>
    public static ReadOnlySequence<byte> Repeated(ReadOnlyMemory<byte> chunk, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        Segment first = new(chunk, 0);
        Segment last = first;
        for (int i = 1; i < count; i++)
        {
            last = last.Append(chunk);
        }
        return new ReadOnlySequence<byte>(first, 0, last, chunk.Length);
    }

    /// <summary>All the ways a test wants a byte[] cut up: whole, one byte per segment, and a few random cuts.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> AllShapes(byte[] data)
    {
        yield return new ReadOnlySequence<byte>(data);
        yield return OneBytePerSegment(data);
        for (int seed = 1; seed <= 3; seed++)
        {
            yield return RandomSegments(data, seed);
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
