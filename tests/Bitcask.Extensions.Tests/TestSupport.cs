using System.Buffers;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Extensions.Tests;

/// <summary>A fresh directory under the temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string name = "ext")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"bitcask-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class Clocks
{
    /// <summary>A fake clock at a fixed, whole-second instant (so millisecond arithmetic in the tests is exact).</summary>
    public static FakeTimeProvider Fake() => new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
}

/// <summary>A ReadOnlySequence made of several segments.</summary>
internal sealed class Segment : ReadOnlySequenceSegment<byte>
{
    private Segment(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Split(byte[] data, int pieces)
    {
        if (data.Length == 0 || pieces <= 1) return new ReadOnlySequence<byte>(data);
        var size = Math.Max(1, data.Length / pieces);
        Segment first = new(data.AsMemory(0, Math.Min(size, data.Length)), 0), last = first;
        for (var offset = first.Memory.Length; offset < data.Length; offset += size)
        {
            var next = new Segment(data.AsMemory(offset, Math.Min(size, data.Length - offset)), offset);
            last.Next = next;
            last = next;
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
