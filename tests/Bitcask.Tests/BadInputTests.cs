using System.Text;

namespace Bitcask.Tests;

public class BadInputTests
{
    private static readonly BitcaskOptions Limits = new() { MaxKeyBytes = 16, MaxValueBytes = 100, MaxSegmentBytes = 4096 };

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static Dictionary<string, byte[]> Files(TempDirectory dir) =>
        Directory.GetFiles(dir.Path).Where(f => !f.EndsWith("LOCK")).ToDictionary(f => f, File.ReadAllBytes);

    [Fact]
    public void Rejected_writes_name_the_limit_and_change_no_byte_on_disk()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Limits);
        store.Put("k", "v");
        store.Sync();
        var before = Files(dir);

        var key = Assert.Throws<ArgumentException>(() => store.Put(new byte[17], B("v")));
        Assert.Contains("MaxKeyBytes = 16", key.Message);
        var value = Assert.Throws<ArgumentException>(() => store.Put(B("k"), new byte[101]));
        Assert.Contains("MaxValueBytes = 100", value.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Put(B("k"), B("v"), TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Put(B("k"), B("v"), TimeSpan.FromSeconds(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Put(B("k"), B("v"), TimeSpan.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WriteBatch().Put(B("k"), B("v"), TimeSpan.FromTicks(-5)));
        var batchKey = Assert.Throws<ArgumentException>(() => store.Write(new WriteBatch().Put(B("ok"), B("v")).Put(new byte[20], B("v"))));
        Assert.Contains("operation 1", batchKey.Message);
        var big = new WriteBatch();
        for (var i = 0; i < 100; i++) big.Put(B($"key{i}"), new byte[100]);
        var tooBig = Assert.Throws<ArgumentException>(() => store.Write(big));
        Assert.Contains("must fit in one segment", tooBig.Message);
        Assert.Null(store.Get(new byte[17]));     // MaxKeyBytes bounds new puts only: a read or delete of a longer key misses
        Assert.False(store.Delete(new byte[17]));

        store.Sync();
        Assert.Equal(before, Files(dir));
        Assert.Equal("v", store.GetString("k"));
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Values_and_keys_at_the_limit_are_accepted()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path, Limits))
            store.Put(new byte[16], Enumerable.Repeat((byte)7, 100).ToArray());
        using (var store = BitcaskStore.Open(dir.Path, Limits))
            Assert.Equal(100, store.Get(new byte[16])!.Length);
    }

    [Fact]
    public void Options_that_cannot_work_are_rejected_at_open()
    {
        using var dir = new TempDirectory();
        Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 100 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxKeyBytes = 70000 }));
        var tooLarge = Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 1 << 20, MaxValueBytes = 2 << 20 }));
        Assert.Contains("MaxSegmentBytes", tooLarge.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskStore.Open(dir.Path, new BitcaskOptions { SyncInterval = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionFragmentationThreshold = 2 }));
    }

    [Fact]
    public void Every_call_after_dispose_throws_ObjectDisposedException()
    {
        using var dir = new TempDirectory();
        var store = BitcaskStore.Open(dir.Path);
        store.Put("k", "v");
        store.Dispose();
        store.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => store.Get(B("k")));
        Assert.Throws<ObjectDisposedException>(() => store.Put("k", "v"));
        Assert.Throws<ObjectDisposedException>(() => store.Delete("k"));
        Assert.Throws<ObjectDisposedException>(() => store.ContainsKey(B("k")));
        Assert.Throws<ObjectDisposedException>(() => store.Count);
        Assert.Throws<ObjectDisposedException>(() => store.Keys().ToList());
        Assert.Throws<ObjectDisposedException>(() => store.Sync());
        Assert.Throws<ObjectDisposedException>(() => store.Write(new WriteBatch().Put("a", "b")));
        Assert.Throws<ObjectDisposedException>(() => store.Compact());
        Assert.Throws<ObjectDisposedException>(() => store.GetStats());
    }

    [Fact]
    public void Read_only_store_refuses_writes_and_never_creates_a_directory()
    {
        using var dir = new TempDirectory();
        Assert.Throws<DirectoryNotFoundException>(() => BitcaskStore.Open(dir.File("missing"), new BitcaskOptions { ReadOnly = true }));
        Assert.False(Directory.Exists(dir.File("missing")));
        using (var writer = BitcaskStore.Open(dir.Path)) writer.Put("k", "v");
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true });
        Assert.Throws<NotSupportedException>(() => store.Put("k", "w"));
        Assert.Throws<NotSupportedException>(() => store.Delete("k"));
        Assert.Equal("v", store.GetString("k"));
    }

    [Fact]
    public void A_file_where_the_store_directory_should_be_is_rejected()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("plain"), "x");
        var error = Assert.Throws<IOException>(() => BitcaskStore.Open(dir.File("plain")));
        Assert.Contains("is a file", error.Message);
    }

    [Fact]
    public void Second_writer_on_the_same_directory_fails_at_once_and_succeeds_after_the_first_closes()
    {
        using var dir = new TempDirectory();
        using (var first = BitcaskStore.Open(dir.Path))
        {
            var error = Assert.Throws<StoreLockedException>(() => BitcaskStore.Open(dir.Path));
            Assert.Contains(dir.Path, error.Message);
            Assert.EndsWith("LOCK", error.LockFile);
            using var reader = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true });
            first.Put("k", "v");
        }
        using var second = BitcaskStore.Open(dir.Path);
        Assert.Equal("v", second.GetString("k"));
    }

    [Fact]
    public void Expired_keys_are_invisible_to_every_read_api()
    {
        using var dir = new TempDirectory();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = new BitcaskOptions { TimeProvider = clock };
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            store.Put(B("short"), B("v"), TimeSpan.FromSeconds(10));
            store.Put(B("long"), B("v"), TimeSpan.FromHours(1));
            store.Put("forever", "v");
            Assert.Equal(3, store.Count);
            clock.Advance(TimeSpan.FromSeconds(11));
            Assert.Null(store.Get(B("short")));
            Assert.False(store.ContainsKey(B("short")));
            Assert.False(store.TryGet(B("short"), new System.Buffers.ArrayBufferWriter<byte>()));
            Assert.Equal(2, store.Count);
            Assert.DoesNotContain("short", store.Keys().Select(k => Encoding.UTF8.GetString(k)));
            Assert.False(store.Delete("short"));
        }
        clock.Advance(TimeSpan.FromHours(2));
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            Assert.Equal(1, store.Count);
            Assert.Equal("v", store.GetString("forever"));
            Assert.Null(store.GetString("long"));
        }
    }
}
