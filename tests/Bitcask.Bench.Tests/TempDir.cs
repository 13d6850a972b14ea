namespace Bitcask.BenchTests;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bitcask-bench-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A theory that is skipped, with the loader's reason, where LMDB's native library cannot be loaded.</summary>
public sealed class LmdbTheoryAttribute : TheoryAttribute
{
    public LmdbTheoryAttribute()
    {
        if (!Bitcask.Bench.Stores.LmdbKv.IsAvailable(out var reason)) Skip = reason;
    }
}

/// <summary>A fact that is skipped, with the loader's reason, where LMDB's native library cannot be loaded.</summary>
public sealed class LmdbFactAttribute : FactAttribute
{
    public LmdbFactAttribute()
    {
        if (!Bitcask.Bench.Stores.LmdbKv.IsAvailable(out var reason)) Skip = reason;
    }
}
