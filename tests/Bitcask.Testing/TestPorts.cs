using System.Net;
using System.Net.Sockets;

namespace Bitcask.Testing;

/// <summary>
/// Loopback ports for tests to listen on, taken below the kernel's ephemeral range (32768–60999 on Linux). A port the
/// kernel hands out with bind(0) comes from that range, and between the probe closing it and the test binding it, any
/// process's outgoing connection may take it: with the test projects running side by side, that failed tests with
/// "Address already in use". Each process walks the range from its own random start and hands out only ports a bind
/// accepted a moment ago.
/// <para>Thread-safety: <see cref="Free"/> may be called from any thread.</para>
/// </summary>
public static class TestPorts
{
    private const int Low = 20_000, Count = 12_000;
    private static int _cursor = Random.Shared.Next(Count);

    /// <summary>A loopback port below the ephemeral range that no one was listening on a moment ago.</summary>
    public static int Free()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = Low + (int)((uint)Interlocked.Increment(ref _cursor) % Count);
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
                // taken: try the next one
            }
        }
        throw new InvalidOperationException($"No free loopback port between {Low} and {Low + Count}.");
    }
}
