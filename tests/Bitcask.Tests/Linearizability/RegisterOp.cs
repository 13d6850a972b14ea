namespace Bitcask.Tests.Linearizability;

internal enum RegisterOpKind { Get, CompareAndSet, Increment }

/// <summary>
/// One completed operation of a history on a register-with-version per key, with its invocation and response times
/// (Stopwatch ticks: taken just before the call and just after it returned).
/// <list type="bullet">
/// <item><see cref="RegisterOpKind.Get"/>: <see cref="Ok"/> = found; <see cref="Value"/> and <see cref="Version"/> read from one record.</item>
/// <item><see cref="RegisterOpKind.CompareAndSet"/>: <see cref="Expected"/> version (0: absent) → <see cref="Argument"/>; <see cref="Ok"/> = stored.</item>
/// <item><see cref="RegisterOpKind.Increment"/>: adds <see cref="Argument"/> (absent = 0); <see cref="Value"/> = the new value.</item>
/// </list>
/// </summary>
internal sealed record RegisterOp(int Client, int Key, RegisterOpKind Kind, long Expected, long Argument, bool Ok, long? Value, long Version, long Invoke, long Response)
{
    public static RegisterOp Get(int client, int key, long invoke, long response, long? value, long version = 0) =>
        new(client, key, RegisterOpKind.Get, 0, 0, value is not null, value, value is null ? 0 : version, invoke, response);

    public static RegisterOp Cas(int client, int key, long invoke, long response, long expected, long newValue, bool ok) =>
        new(client, key, RegisterOpKind.CompareAndSet, expected, newValue, ok, null, 0, invoke, response);

    public static RegisterOp Increment(int client, int key, long invoke, long response, long delta, long result) =>
        new(client, key, RegisterOpKind.Increment, 0, delta, true, result, 0, invoke, response);

    public override string ToString() => Kind switch
    {
        RegisterOpKind.Get => $"c{Client} k{Key} Get → {(Ok ? $"{Value}@v{Version}" : "absent")} [{Invoke},{Response}]",
        RegisterOpKind.CompareAndSet => $"c{Client} k{Key} CAS(v{Expected} → {Argument}) → {Ok} [{Invoke},{Response}]",
        _ => $"c{Client} k{Key} Increment({Argument}) → {Value} [{Invoke},{Response}]",
    };
}
