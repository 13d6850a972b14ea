namespace Bitcask.Tests;

/// <summary>
/// Group commit with async writers that each write again as soon as their previous write is acknowledged (a server's
/// connections at pipeline depth 1): before a slow commit the leader waits for the writers of the previous group to
/// queue again, so they commit together instead of splitting into two cohorts that alternate, each half the size.
/// </summary>
public class GroupCommitSiblingTests
{
    private sealed class SlowWork : GroupCommit.ILeaderWork
    {
        public readonly List<int> Sizes = [];

        public void Commit(List<WriteRequest> group)
        {
            lock (Sizes) Sizes.Add(group.Count);
            Thread.Sleep(20); // a slow fdatasync
        }

        public Exception? RefuseReason => null;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Async_writers_that_write_again_at_once_commit_together_instead_of_in_two_alternating_halves(bool inlineCompletions)
    {
        const int writers = 16, rounds = 15;
        var work = new SlowWork();
        var commit = new GroupCommit(work, maxGroupBytes: 1 << 20, inlineCompletions);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < rounds; i++)
                {
                    var request = new WriteRequest();
                    request.Reset(WriteRequestKind.Record);
                    request.Reserve(16);
                    await commit.SubmitAsync(request);
                }
            }))).WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            commit.Close();
        }
        int[] sizes;
        lock (work.Sizes) sizes = [.. work.Sizes];
        Assert.Equal(writers * rounds, sizes.Sum());
        // Without the wait the writers settle into two cohorts that alternate (the writers released by one commit are not
        // back before the next leader starts), so a commit covers about half of them on average; with it nearly every
        // commit covers all 16.
        var perCommit = (double)sizes.Sum() / sizes.Length;
        Assert.True(perCommit > writers * 3 / 4.0, $"{perCommit:0.0} writes per commit with {writers} writers; groups: {string.Join(",", sizes)}");
    }
}
