using System.Text;

namespace Bitcask.Server.Commands;

/// <summary>Every command the server knows, by name (case-insensitive). Immutable after <see cref="Create"/>: safe to
/// share between threads.</summary>
internal sealed class CommandTable
{
    private readonly Dictionary<string, CommandSpec> _byName = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, CommandSpec>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    private CommandTable(IEnumerable<CommandSpec> specs)
    {
        foreach (var spec in specs) _byName.Add(spec.Name, spec);
        _lookup = _byName.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public static CommandTable Create() => new([
        .. ConnectionCommands.All(), .. ServerCommands.All(), .. StringCommands.All(), .. KeyCommands.All(),
        .. HashCommands.All(), .. TransactionCommands.All(), .. PubSubCommands.All(), .. ScriptCommands.All(),
        .. ClusterCommands.All()]);

    public IReadOnlyCollection<CommandSpec> All => _byName.Values;

    public CommandSpec? Find(ReadOnlySpan<byte> name)
    {
        if (name.Length is 0 or > 32) return null;
        Span<char> chars = stackalloc char[name.Length];
        for (var i = 0; i < name.Length; i++) chars[i] = (char)name[i];
        return _lookup.TryGetValue(chars, out var spec) ? spec : null;
    }

    public CommandSpec? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Redis 7's reply to an unknown command, arguments quoted up to 128 characters.</summary>
    public static string UnknownCommand(byte[][] args)
    {
        var list = new StringBuilder();
        for (var i = 1; i < args.Length && list.Length < 128; i++)
        {
            var text = Encoding.UTF8.GetString(args[i]);
            var room = 128 - list.Length;
            list.Append('\'').Append(text.Length > room ? text[..room] : text).Append("' ");
        }
        var name = Encoding.UTF8.GetString(args[0]);
        if (name.Length > 128) name = name[..128];
        return $"ERR unknown command '{name}', with args beginning with: {list}";
    }
}
