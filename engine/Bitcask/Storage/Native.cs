using System.Runtime.InteropServices;

namespace Bitcask.Storage;

/// <summary>The few POSIX calls .NET does not expose: directory fsync, fdatasync, mmap and link.</summary>
internal static unsafe partial class Native
{
    public static readonly bool IsLinux = OperatingSystem.IsLinux();

    // open(2) and mmap(2) flags. O_RDONLY, PROT_READ and MAP_SHARED have these values on every Linux architecture (and on
    // macOS and FreeBSD); O_DIRECTORY does not (see OpenDirectoryFlag).
    private const int O_RDONLY = 0;
    private const int PROT_READ = 1;
    private const int MAP_SHARED = 1;

    /// <summary>O_DIRECTORY on Linux for the running process's architecture.</summary>
    private static readonly int LinuxOpenDirectoryFlag = OpenDirectoryFlag(RuntimeInformation.ProcessArchitecture);

    /// <summary>
    /// The value of O_DIRECTORY on Linux for <paramref name="architecture"/> (from the kernel's asm/fcntl.h headers), or 0 for
    /// an architecture whose value we do not know: open(2) of a directory with O_RDONLY alone works everywhere, O_DIRECTORY
    /// only adds the check that the path is one. A wrong value would be worse than none: 0x10000 is O_DIRECT on arm and arm64.
    /// Only Linux x64 runs in CI; the other values are untested (README.md, "Platforms").
    /// </summary>
    internal static int OpenDirectoryFlag(Architecture architecture) => architecture switch
    {
        // asm-generic/fcntl.h: 00200000
        Architecture.X64 or Architecture.X86 or Architecture.RiscV64 or Architecture.LoongArch64 or Architecture.S390x => 0x10000,
        // arch/arm, arch/arm64 and arch/powerpc: 040000 (their 0200000 is O_LARGEFILE, 0400000 O_DIRECT on powerpc)
        Architecture.Arm or Architecture.Armv6 or Architecture.Arm64 or Architecture.Ppc64le => 0x4000,
        _ => 0,
    };

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    // off_t is pointer-sized for the plain mmap symbol (glibc and musl; 64-bit only through mmap64 on 32-bit targets).
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);

    // Linux errno values (asm-generic/errno-base.h, errno.h): the failures that mean "no link here, copy instead".
    private const int EPERM = 1, ENOENT = 2, EXDEV = 18, EMLINK = 31, EOPNOTSUPP = 95;

    /// <summary>
    /// link(2) on Linux: true when <paramref name="target"/> now names the same inode as <paramref name="source"/>. False
    /// when the file system will not link them (EXDEV: another file system; EPERM or EOPNOTSUPP: no hard links there, as on
    /// vfat or some FUSE and network file systems; EMLINK: too many links) or the source is gone (ENOENT), and on every
    /// other OS (untested there; the caller copies). Any other errno throws.
    /// </summary>
    public static bool TryLink(string source, string target)
    {
        if (!IsLinux) return false;
        if (link(source, target) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno is EPERM or ENOENT or EXDEV or EMLINK or EOPNOTSUPP) return false;
        throw new IOException($"link failed for '{source}' -> '{target}': {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }

    public static void SyncDirectory(string path)
    {
        if (!IsLinux && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return; // Windows has no directory fsync; NTFS journals names
        var fd = open(path, O_RDONLY | (IsLinux ? LinuxOpenDirectoryFlag : 0));
        if (fd < 0) throw ErrnoException("open directory for fsync", path);
        try
        {
            if (fsync(fd) != 0) throw ErrnoException("fsync directory", path);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>fdatasync on Linux (skips metadata that is not needed to read the data back); fsync elsewhere.</summary>
    public static bool TryDataSync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        if (!IsLinux) return false;
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (fdatasync((int)handle.DangerousGetHandle()) != 0) throw ErrnoException("fdatasync", path);
            return true;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    public static nint Map(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length, string path)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var address = mmap(0, (nuint)length, PROT_READ, MAP_SHARED, (int)handle.DangerousGetHandle(), 0);
            if (address == -1) throw ErrnoException("mmap", path);
            return address;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    public static void Unmap(nint address, long length) => munmap(address, (nuint)length);

    private static IOException ErrnoException(string operation, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{operation} failed for '{path}': {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }
}
