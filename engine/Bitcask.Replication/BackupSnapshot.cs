using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Bitcask.Replication;

/// <summary>
/// A local snapshot: <c>{index}-{term}/store/</c> under the snapshot folder, a <see cref="BitcaskStore.Backup"/> of the
/// store right after entry <c>index</c> was applied. To a lagging follower DotNext sends it as one log entry whose
/// bytes are the stream described in FORMAT.md ("Replication snapshot stream"): a header, then every backup file.
/// Immutable once published; safe to stream from several threads.
/// </summary>
internal sealed class BackupSnapshot(string directory, long index, long term) : ISnapshot
{
    internal const string StoreFolder = "store";
    private static ReadOnlySpan<byte> Magic => "BCRSNAP1"u8;

    internal string Directory { get; } = directory;
    public long Index { get; } = index;
    public long Term { get; } = term;

    bool IDataTransferObject.IsReusable => true;

    long? IDataTransferObject.Length
    {
        get
        {
            long length = 8 + 8 + 8 + 4;
            foreach (var f in Files())
                length += 2 + Encoding.UTF8.GetByteCount(f.Name) + 8 + f.Length;
            return length;
        }
    }

    private FileInfo[] Files() =>
        new DirectoryInfo(Path.Combine(Directory, StoreFolder)).GetFiles().OrderBy(f => f.Name, StringComparer.Ordinal).ToArray();

    async ValueTask IDataTransferObject.WriteToAsync<TWriter>(TWriter writer, CancellationToken token)
    {
        var files = Files();
        var header = new byte[28];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), Index);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), Term);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), (uint)files.Length);
        await writer.Invoke(header, token).ConfigureAwait(false);
        foreach (var file in files)
        {
            var name = Encoding.UTF8.GetBytes(file.Name);
            var head = new byte[2 + name.Length + 8];
            BinaryPrimitives.WriteUInt16LittleEndian(head, (ushort)name.Length);
            name.CopyTo(head.AsSpan(2));
            BinaryPrimitives.WriteInt64LittleEndian(head.AsSpan(2 + name.Length), file.Length);
            await writer.Invoke(head, token).ConfigureAwait(false);
            await using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await writer.CopyFromAsync(stream, file.Length, token).ConfigureAwait(false);
        }
    }

    internal static string Name(long index, long term) => string.Create(CultureInfo.InvariantCulture, $"{index}-{term}");

    internal static bool TryParseName(string name, out long index, out long term)
    {
        index = term = 0;
        var dash = name.IndexOf('-');
        return dash > 0
            && long.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out index)
            && long.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out term);
    }

    internal static BackupSnapshot? FindNewest(string root)
    {
        BackupSnapshot? best = null;
        foreach (var dir in System.IO.Directory.EnumerateDirectories(root))
            if (TryParseName(Path.GetFileName(dir), out var index, out var term) && (best is null || index > best.Index))
                best = new BackupSnapshot(dir, index, term);
        return best;
    }

    /// <summary>Reads a snapshot stream into <c>{index}-{term}/store/</c> under <paramref name="root"/> (written as
    /// <c>.tmp</c>, fsynced, then renamed), and returns it.</summary>
    internal static async Task<BackupSnapshot> UnpackAsync(Stream input, string root, CancellationToken token)
    {
        var header = new byte[28];
        await input.ReadExactlyAsync(header, token).ConfigureAwait(false);
        if (!header.AsSpan(0, 8).SequenceEqual(Magic))
            throw new InvalidDataException("not a Bitcask replication snapshot (bad magic)");
        var index = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
        var term = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(16));
        var count = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(24));
        var final = Path.Combine(root, Name(index, term));
        var tmp = final + ".tmp";
        StoreStateMachine.DeleteAny(tmp);
        var storeDir = Path.Combine(tmp, StoreFolder);
        System.IO.Directory.CreateDirectory(storeDir);
        var buffer = new byte[1 << 16];
        for (var i = 0u; i < count; i++)
        {
            var len = new byte[2];
            await input.ReadExactlyAsync(len, token).ConfigureAwait(false);
            var name = new byte[BinaryPrimitives.ReadUInt16LittleEndian(len)];
            await input.ReadExactlyAsync(name, token).ConfigureAwait(false);
            var fileName = Encoding.UTF8.GetString(name);
            if (fileName.Length == 0 || fileName != Path.GetFileName(fileName) || fileName is "." or "..")
                throw new InvalidDataException($"snapshot file name \"{fileName}\" is not a plain file name");
            var sizeBytes = new byte[8];
            await input.ReadExactlyAsync(sizeBytes, token).ConfigureAwait(false);
            var size = BinaryPrimitives.ReadInt64LittleEndian(sizeBytes);
            if (size < 0) throw new InvalidDataException($"snapshot file {fileName} has a negative length");
            await using var output = new FileStream(Path.Combine(storeDir, fileName), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            for (var left = size; left > 0;)
            {
                var n = await input.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), token).ConfigureAwait(false);
                if (n == 0) throw new EndOfStreamException($"snapshot stream ends inside {fileName}");
                await output.WriteAsync(buffer.AsMemory(0, n), token).ConfigureAwait(false);
                left -= n;
            }
            output.Flush(flushToDisk: true);
        }
        StoreStateMachine.DeleteAny(final);
        System.IO.Directory.Move(tmp, final);
        return new BackupSnapshot(final, index, term);
    }
}
