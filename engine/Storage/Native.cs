using System.Runtime.InteropServices;

namespace Bitcask.Storage;

/// <summary>The few POSIX calls .NET does not expose: directory fsync, fdatasync and mmap.</summary>
internal static unsafe partial class Native
{
    public static readonly bool IsLinux = OperatingSystem.IsLinux();

    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000; // Linux x86-64 / arm64
    private const int PROT_READ = 1;
    private const int MAP_SHARED = 1;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(nint fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, nint fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    public static void SyncDirectory(string path)
    {
        if (!IsLinux && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return; // Windows has no directory fsync; NTFS journals names
        var fd = open(path, O_RDONLY | (IsLinux ? O_DIRECTORY : 0));
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
            if (fdatasync(handle.DangerousGetHandle()) != 0) throw ErrnoException("fdatasync", path);
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
            var address = mmap(0, (nuint)length, PROT_READ, MAP_SHARED, handle.DangerousGetHandle(), 0);
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
