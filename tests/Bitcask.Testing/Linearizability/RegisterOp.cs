namespace Bitcask.Testing.Linearizability;

/// <summary>The operations a history on registers (one per key) records.</summary>
public enum RegisterOpKind
{
    /// <summary>Read the value (and, for the engine, its version).</summary>
    Get,
    /// <summary>Store a value if the current version is the expected one (the engine's CompareAndSet).</summary>
    CompareAndSet,
    /// <summary>Add to the value (absent counts as 0) and return the new value.</summary>
    Increment,
    /// <summary>Store a value unconditionally (RESP SET).</summary>
    Set,
    /// <summary>Store a value if the current value is the expected one, or the key is absent when none is expected
    /// (RESP: a Lua script or WATCH/MULTI/EXEC).</summary>
    CompareValueAndSet,
    /// <summary>Remove the key; <see cref="RegisterOp.Ok"/> = it existed.</summary>
    Delete,
}

/// <summary>
/// One operation of a history on a register-with-version per key, with its invocation and response times (Stopwatch
/// ticks: taken just before the call and just after it returned).
/// <list type="bullet">
/// <item><see cref="RegisterOpKind.Get"/>: <see cref="Ok"/> = found; <see cref="Value"/> and <see cref="Version"/> read
/// from one record (<see cref="Version"/> 0 on a found value: the client cannot see versions, as over RESP).</item>
/// <item><see cref="RegisterOpKind.CompareAndSet"/>: <see cref="Expected"/> version (0: absent) → <see cref="Argument"/>; <see cref="Ok"/> = stored.</item>
/// <item><see cref="RegisterOpKind.Increment"/>: adds <see cref="Argument"/> (absent = 0); <see cref="Value"/> = the new value.</item>
/// <item><see cref="RegisterOpKind.Set"/>: stores <see cref="Argument"/>.</item>
/// <item><see cref="RegisterOpKind.CompareValueAndSet"/>: <see cref="ExpectedValue"/> (null: absent) → <see cref="Argument"/>; <see cref="Ok"/> = stored.</item>
/// <item><see cref="RegisterOpKind.Delete"/>: <see cref="Ok"/> = the key existed.</item>
/// </list>
/// An operation whose outcome the client never learned (an error reply, a timeout, a dropped connection) has
/// <see cref="OutcomeUnknown"/> set and <see cref="Response"/> = <see cref="long.MaxValue"/>: it may have taken effect
/// at any moment after its invocation, or never; its result is not checked.
/// </summary>
public sealed record RegisterOp(int Client, int Key, RegisterOpKind Kind, long Expected, long Argument, bool Ok, long? Value, long Version, long Invoke, long Response)
{
    /// <summary>For <see cref="RegisterOpKind.CompareValueAndSet"/>: the value the key must hold (null: absent).</summary>
    public long? ExpectedValue { get; init; }

    /// <summary>The client never learned the outcome: possibly applied, at any time after <see cref="Invoke"/>.</summary>
    public bool OutcomeUnknown { get; init; }

    public static RegisterOp Get(int client, int key, long invoke, long response, long? value, long version = 0) =>
        new(client, key, RegisterOpKind.Get, 0, 0, value is not null, value, value is null ? 0 : version, invoke, response);

    public static RegisterOp Cas(int client, int key, long invoke, long response, long expected, long newValue, bool ok) =>
        new(client, key, RegisterOpKind.CompareAndSet, expected, newValue, ok, null, 0, invoke, response);

    public static RegisterOp Increment(int client, int key, long invoke, long response, long delta, long result) =>
        new(client, key, RegisterOpKind.Increment, 0, delta, true, result, 0, invoke, response);

    public static RegisterOp Set(int client, int key, long invoke, long response, long value) =>
        new(client, key, RegisterOpKind.Set, 0, value, true, null, 0, invoke, response);

    public static RegisterOp CompareValue(int client, int key, long invoke, long response, long? expectedValue, long newValue, bool ok) =>
        new(client, key, RegisterOpKind.CompareValueAndSet, 0, newValue, ok, null, 0, invoke, response) { ExpectedValue = expectedValue };

    public static RegisterOp Delete(int client, int key, long invoke, long response, bool existed) =>
        new(client, key, RegisterOpKind.Delete, 0, 0, existed, null, 0, invoke, response);

    /// <summary>The same operation with its outcome unknown (possibly applied from <see cref="Invoke"/> on, or never).</summary>
    public RegisterOp AsUnknown() => this with { OutcomeUnknown = true, Response = long.MaxValue, Ok = false, Value = null };

    public override string ToString()
    {
        var when = OutcomeUnknown ? $"[{Invoke},?]" : $"[{Invoke},{Response}]";
        var result = OutcomeUnknown ? "?" : null;
        return Kind switch
        {
            RegisterOpKind.Get => $"c{Client} k{Key} Get → {result ?? (Ok ? (Version == 0 ? $"{Value}" : $"{Value}@v{Version}") : "absent")} {when}",
            RegisterOpKind.CompareAndSet => $"c{Client} k{Key} CAS(v{Expected} → {Argument}) → {result ?? Ok.ToString()} {when}",
            RegisterOpKind.Increment => $"c{Client} k{Key} Increment({Argument}) → {result ?? Value.ToString()} {when}",
            RegisterOpKind.Set => $"c{Client} k{Key} Set({Argument}) {(result ?? "→ OK")} {when}",
            RegisterOpKind.CompareValueAndSet => $"c{Client} k{Key} CAS({ExpectedValue?.ToString() ?? "absent"} → {Argument}) → {result ?? Ok.ToString()} {when}",
            _ => $"c{Client} k{Key} Delete → {result ?? (Ok ? "1" : "0")} {when}",
        };
    }
}
