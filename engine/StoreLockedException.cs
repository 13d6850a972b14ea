namespace Bitcask;

/// <summary>Thrown when another process (or another open store in this process) holds a store's writer lock.</summary>
public sealed class StoreLockedException : IOException
{
    public StoreLockedException(string directory, string lockFile, Exception? inner = null)
        : base($"The store at '{directory}' is already open for writing by another process or BitcaskStore (lock file '{lockFile}' is held). " +
               "Close the other writer, or open with ReadOnly = true.", inner)
    {
        Directory = directory;
        LockFile = lockFile;
    }

    public string Directory { get; }
    public string LockFile { get; }
}
