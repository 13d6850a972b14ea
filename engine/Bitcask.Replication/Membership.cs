using System.Net;
using DotNext.Buffers;
using DotNext.IO;
using DotNext.Net;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace Bitcask.Replication;

/// <summary>
/// The node's Raft membership, kept in <c>LogDirectory/members</c> so that a node added or removed through a
/// configuration change stays added or removed across restarts (like etcd, the static <see cref="ReplicationOptions.Members"/>
/// only seed a node that has never run). DotNext writes the file on every configuration it applies (an 8-byte
/// little-endian configuration version, then its encoding of the member list: FORMAT.md section 8, "Membership file").
/// <para>Thread-safety: DotNext serializes access to it; <see cref="SeedAsync"/> runs before the Raft member starts.</para>
/// </summary>
internal sealed class Membership(string file) : PersistentClusterConfigurationStorage<EndPoint>(file)
{
    /// <summary>The file's name in the log directory.</summary>
    internal const string FileName = "members";

    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer) => writer.WriteEndPoint(address);

    protected override EndPoint Decode(ref SequenceReader reader) => reader.ReadEndPoint();

    /// <summary>Writes the initial configuration (version 0) of a node that has no membership file yet: the same bytes
    /// DotNext writes, produced by its own serializer, written through <see cref="DurableFile"/> so a crash leaves either
    /// no file or a whole one.</summary>
    internal static async Task SeedAsync(string file, IReadOnlyCollection<IPEndPoint> members, CancellationToken token)
    {
        var initial = new Initial();
        var builder = initial.CreateInitialConfigurationBuilder();
        foreach (var member in members) builder.Add(member);
        builder.Build();
        var (configuration, _) = await ((IClusterConfigurationStorage)initial).LoadConfigurationAsync(token).ConfigureAwait(false);
        var bytes = await configuration.ToByteArrayAsync(token: token).ConfigureAwait(false);
        var content = new byte[sizeof(long) + bytes.Length]; // version 0, then the configuration
        bytes.CopyTo(content, sizeof(long));
        DurableFile.Write(file, content);
    }

    /// <summary>DotNext's in-memory storage with the same address encoding, used only to serialize a first configuration.</summary>
    private sealed class Initial : InMemoryClusterConfigurationStorage<EndPoint>
    {
        protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer) => writer.WriteEndPoint(address);

        protected override EndPoint Decode(ref SequenceReader reader) => reader.ReadEndPoint();
    }
}
