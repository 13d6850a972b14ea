using System.Runtime.InteropServices;
using Bitcask.Storage;

namespace Bitcask.Tests;

/// <summary>The open(2) flag used to fsync a store directory on Linux, per architecture (kernel asm/fcntl.h). Only Linux x64
/// runs these calls for real in CI; for the others this checks the table, not the kernel.</summary>
public class NativeTests
{
    [Theory]
    [InlineData(Architecture.X64, 0x10000)]       // 0200000: asm-generic
    [InlineData(Architecture.X86, 0x10000)]
    [InlineData(Architecture.RiscV64, 0x10000)]
    [InlineData(Architecture.LoongArch64, 0x10000)]
    [InlineData(Architecture.S390x, 0x10000)]
    [InlineData(Architecture.Arm64, 0x4000)]      // 040000: there 0200000 (0x10000) is O_DIRECT
    [InlineData(Architecture.Arm, 0x4000)]
    [InlineData(Architecture.Armv6, 0x4000)]
    [InlineData(Architecture.Ppc64le, 0x4000)]
    [InlineData(Architecture.Wasm, 0)]            // unknown: no O_DIRECTORY at all, O_RDONLY opens a directory anyway
    public void A_directory_is_opened_for_fsync_with_the_O_DIRECTORY_value_of_its_architecture_or_none(Architecture architecture, int expectedFlag) =>
        Assert.Equal(expectedFlag, Native.OpenDirectoryFlag(architecture));
}
