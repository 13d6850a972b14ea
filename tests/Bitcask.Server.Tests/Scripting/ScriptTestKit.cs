using System.Text;
using Bitcask.Server.Scripting;

namespace Bitcask.Server.Tests.Scripting;

/// <summary>Shorthands for the scripting tests.</summary>
internal static class ScriptTestKit
{
    public static ScriptValue Eval(this LuaScriptHost host, string script, FakeRedis? redis = null, string[]? keys = null, string[]? args = null) =>
        host.Eval(Encoding.UTF8.GetBytes(script), Bytes(keys), Bytes(args), redis ?? new FakeRedis());

    public static ScriptValue EvalSha(this LuaScriptHost host, string sha1, FakeRedis? redis = null, string[]? keys = null, string[]? args = null) =>
        host.EvalSha(sha1, Bytes(keys), Bytes(args), redis ?? new FakeRedis());

    public static string Load(this LuaScriptHost host, string script) => host.Load(Encoding.UTF8.GetBytes(script));

    public static ScriptValue.Bulk B(string text) => ScriptValue.Bulk.From(text);

    public static ScriptValue.Integer I(long value) => new(value);

    public static ScriptValue.Nil Nil => new();

    public static ScriptValue.Array A(params ScriptValue[] items) => new(items);

    public static string ErrorText(ScriptValue value) =>
        Assert.IsType<ScriptValue.Error>(value).Message;

    private static byte[][] Bytes(string[]? values) => values is null ? [] : [.. values.Select(v => Encoding.UTF8.GetBytes(v))];
}
