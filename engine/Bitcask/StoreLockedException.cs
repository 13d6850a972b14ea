namespace Bitcask;

/// <summary>Thrown when another process (or another open store in this process) holds a store's writer lock.</summary>
public sealed class StoreLockedException : IOException
{
    /// <summary>The store in <paramref name="directory"/> is locked through <paramref name="lockFile"/>.</summary>
    public StoreLockedException(string directory, string lockFile, Exception? inner = null)
        : base($"The store at '{directory}' is already open for writing by another process or BitcaskStore (lock file '{lockFile}' is held). " +
               "Close the other writer, or open with ReadOnly = true.", inner)
    {
        Directory = directory;
        LockFile = lockFile;
    }

    /// <summary>The store directory.</summary>
    public string Directory { get; }
    /// <summary>The lock file another writer holds.</summary>
    public string LockFile { get; }
}
