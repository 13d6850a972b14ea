namespace Bitcask.Server.Commands;

/// <summary>SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.</summary>
internal static class PubSubCommands
{
    private const CommandFlags Sub = CommandFlags.PubSub | CommandFlags.PubSubContext | CommandFlags.NoScript;

    public static IEnumerable<CommandSpec> All() =>
    [
        new("subscribe", -2, Sub, 0, 0, 0, "pubsub", "Listens for messages published to channels.", c => Subscribe(c, pattern: false)),
        new("psubscribe", -2, Sub, 0, 0, 0, "pubsub", "Listens for messages published to channels that match one or more patterns.", c => Subscribe(c, pattern: true)),
        new("unsubscribe", -1, Sub, 0, 0, 0, "pubsub", "Stops listening to messages posted to channels.", c => Unsubscribe(c, pattern: false)),
        new("punsubscribe", -1, Sub, 0, 0, 0, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", c => Unsubscribe(c, pattern: true)),
        new("publish", 3, CommandFlags.PubSub | CommandFlags.Fast, 0, 0, 0, "pubsub", "Posts a message to a channel.", Publish),
        new("pubsub", -2, CommandFlags.PubSub, 0, 0, 0, "pubsub", "A container for Pub/Sub commands.", PubSubInfo),
    ];

    private static void Subscribe(CommandContext c, bool pattern)
    {
        var client = c.Client!;
        if (c.InTransaction)
        {
            c.Reply.Error($"ERR Command not allowed inside a transaction");
            return;
        }
        var set = pattern ? client.Patterns : client.Channels;
        for (var i = 1; i < c.Count; i++)
        {
            var channel = c.Arg(i);
            if (set.Add(channel)) c.Server.PubSub.Subscribe(client, channel, pattern);
            c.Reply.Push(3);
            c.Reply.Bulk(pattern ? "psubscribe"u8 : "subscribe"u8);
            c.Reply.Bulk(channel);
            c.Reply.Integer(client.SubscriptionCount);
        }
    }

    private static void Unsubscribe(CommandContext c, bool pattern)
    {
        var client = c.Client!;
        var set = pattern ? client.Patterns : client.Channels;
        var name = pattern ? "punsubscribe"u8 : "unsubscribe"u8;
        var channels = c.Count > 1 ? c.Args[1..] : [.. set];
        if (channels.Length == 0)
        {
            c.Reply.Push(3);
            c.Reply.Bulk(name);
            c.Reply.NullBulk();
            c.Reply.Integer(client.SubscriptionCount);
            return;
        }
        foreach (var channel in channels)
        {
            if (set.Remove(channel)) c.Server.PubSub.Unsubscribe(client, channel, pattern);
            c.Reply.Push(3);
            c.Reply.Bulk(name);
            c.Reply.Bulk(channel);
            c.Reply.Integer(client.SubscriptionCount);
        }
    }

    private static void Publish(CommandContext c)
    {
        var channel = c.Arg(1);
        var message = c.Arg(2);
        if (c.InTransaction || c.InScript)
        {
            // once, after the transaction or script committed; the count is who listens now
            c.AfterCommit.Add(() => c.Server.PubSub.Publish(channel, message));
            c.Reply.Integer(c.Server.PubSub.CountReceivers(channel));
            return;
        }
        c.Reply.Integer(c.Server.PubSub.Publish(channel, message));
    }

    private static void PubSubInfo(CommandContext c)
    {
        if (c.Is(1, "CHANNELS") && c.Count <= 3)
        {
            var channels = c.Server.PubSub.Channels(c.Count == 3 ? c.Arg(2) : null);
            c.Reply.Array(channels.Count);
            foreach (var channel in channels) c.Reply.Bulk(channel);
        }
        else if (c.Is(1, "NUMSUB"))
        {
            c.Reply.Map(c.Count - 2);
            for (var i = 2; i < c.Count; i++)
            {
                c.Reply.Bulk(c.Arg(i));
                c.Reply.Integer(c.Server.PubSub.SubscriberCount(c.Arg(i)));
            }
        }
        else if (c.Is(1, "NUMPAT") && c.Count == 2) c.Reply.Integer(c.Server.PubSub.PatternCount);
        else c.Reply.Error($"ERR unknown subcommand or wrong number of arguments for '{c.Text(1)}'. Try PUBSUB HELP.");
    }
}
