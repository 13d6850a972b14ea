using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Bitcask;

/// <summary>Software prefetch for loops whose next accesses are known but scattered (open's hint loading).</summary>
internal static class Prefetch
{
    /// <summary>Starts loading the cache line holding <paramref name="location"/>; a no-op where SSE is unavailable.
    /// Never faults, so a stale or out-of-date reference is harmless.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Line<T>(ref T location)
    {
        if (Sse.IsSupported) Sse.Prefetch0(Unsafe.AsPointer(ref location));
    }
}
