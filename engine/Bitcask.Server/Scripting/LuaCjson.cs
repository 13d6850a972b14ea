using System.Globalization;
using System.Text;
using System.Text.Json;
using KeraLua;

namespace Bitcask.Server.Scripting;

/// <summary>
/// The C# halves of <c>cjson.encode</c> and <c>cjson.decode</c> (the JSON library Redis bundles), on
/// System.Text.Json's reader for decoding. Like every function Lua calls, they never raise: they return
/// <c>nil, message</c> and the Lua wrappers raise. Used only by the <see cref="LuaScriptState"/> that owns the
/// <see cref="Lua"/> state, on its thread.
/// </summary>
internal static class LuaCjson
{
    /// <summary>Nesting cjson refuses past (its default encode/decode depth).</summary>
    internal const int MaxDepth = 1000;

    /// <summary>Encodes the value at <paramref name="index"/>; returns null on success (JSON in <paramref name="output"/>) or cjson's error text.</summary>
    internal static string? Encode(Lua lua, int index, List<byte> output, long maxBytes)
    {
        try
        {
            return EncodeValue(lua, lua.AbsIndex(index), 0, output, maxBytes);
        }
        catch (JsonTooLargeException)
        {
            return string.Create(CultureInfo.InvariantCulture, $"Cannot serialise: the JSON text would exceed the script memory limit of {maxBytes} bytes");
        }
    }

    /// <summary>
    /// Decodes <paramref name="json"/> and pushes the value (objects and arrays as tables, null as
    /// <c>cjson.null</c>, a light userdata NULL). Returns null on success or an error text (nothing pushed).
    /// <paramref name="overLimit"/> is asked as tables grow, so a huge document stops at the memory limit.
    /// </summary>
    internal static string? Decode(Lua lua, byte[] json, Func<bool> overLimit)
    {
        int top = lua.GetTop();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth + 1 });
        var containers = new Stack<(bool IsArray, long Count)>();
        bool done = false;
        try
        {
            while (!done && reader.Read())
            {
                if (!lua.CheckStack(4) || overLimit())
                {
                    lua.SetTop(top);
                    return "not enough memory";
                }

                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        lua.CreateTable(0, 0);
                        containers.Push((reader.TokenType == JsonTokenType.StartArray, 0));
                        continue;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        containers.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        lua.PushBuffer(Encoding.UTF8.GetBytes(reader.GetString()!));
                        continue;
                    case JsonTokenType.String:
                        lua.PushBuffer(Encoding.UTF8.GetBytes(reader.GetString()!));
                        break;
                    case JsonTokenType.Number:
                        if (reader.TryGetInt64(out long integer))
                        {
                            lua.PushInteger(integer);
                        }
                        else
                        {
                            lua.PushNumber(reader.GetDouble());
                        }

                        break;
                    case JsonTokenType.True:
                    case JsonTokenType.False:
                        lua.PushBoolean(reader.TokenType == JsonTokenType.True);
                        break;
                    case JsonTokenType.Null:
                        lua.PushLightUserData(IntPtr.Zero);
                        break;
                    default:
                        continue; // comments are not allowed by the options; nothing else carries a value
                }

                // A value is complete: store it in its container, or it is the document.
                if (containers.Count == 0)
                {
                    done = true;
                }
                else if (containers.Peek().IsArray)
                {
                    (bool isArray, long count) = containers.Pop();
                    containers.Push((isArray, count + 1));
                    lua.RawSetInteger(-2, count + 1);
                }
                else
                {
                    lua.RawSet(-3);
                }
            }

            if (!done)
            {
                lua.SetTop(top);
                return "Expected value but found T_END at character " + (json.Length + 1).ToString(CultureInfo.InvariantCulture);
            }

            if (reader.Read())
            {
                lua.SetTop(top);
                return "Expected the end but found invalid token at character " +
                       (reader.TokenStartIndex + 1).ToString(CultureInfo.InvariantCulture);
            }

            return null;
        }
        catch (JsonException ex)
        {
            lua.SetTop(top);
            return "Expected value but found invalid token at character " +
                   ((ex.BytePositionInLine ?? 0) + 1).ToString(CultureInfo.InvariantCulture);
        }
    }

    private static string? EncodeValue(Lua lua, int index, int depth, List<byte> output, long maxBytes)
    {
        if (output.Count > maxBytes)
        {
            throw new JsonTooLargeException();
        }

        switch (lua.Type(index))
        {
            case LuaType.Nil:
                Append(output, "null");
                return null;
            case LuaType.Boolean:
                Append(output, lua.ToBoolean(index) ? "true" : "false");
                return null;
            case LuaType.Number:
                return AppendNumber(lua, index, output);
            case LuaType.String:
                AppendString(output, lua.ToBuffer(index, false));
                return null;
            case LuaType.LightUserData when lua.ToUserData(index) == IntPtr.Zero:
                Append(output, "null");
                return null;
            case LuaType.Table:
                return EncodeTable(lua, index, depth + 1, output, maxBytes);
            default:
                return $"Cannot serialise {lua.TypeName(lua.Type(index))}: type not supported";
        }
    }

    private static string? EncodeTable(Lua lua, int index, int depth, List<byte> output, long maxBytes)
    {
        if (depth > MaxDepth || !lua.CheckStack(4))
        {
            return string.Create(CultureInfo.InvariantCulture, $"Cannot serialise, excessive nesting ({depth})");
        }

        // An array when every key is a positive integer and holes are few (cjson's sparse-array rule).
        long count = 0, max = 0;
        bool isArray = true;
        lua.PushNil();
        while (lua.Next(index))
        {
            lua.Pop(1);
            count++;
            if (isArray && lua.IsInteger(-1) && lua.ToInteger(-1) >= 1)
            {
                max = Math.Max(max, lua.ToInteger(-1));
            }
            else
            {
                isArray = false;
            }
        }

        if (count == 0)
        {
            Append(output, "{}");
            return null;
        }

        if (isArray)
        {
            if (max > count * 2 && max > 10)
            {
                return "Cannot serialise table: excessively sparse array";
            }

            output.Add((byte)'[');
            for (long i = 1; i <= max; i++)
            {
                if (i > 1)
                {
                    output.Add((byte)',');
                }

                lua.RawGetInteger(index, i);
                string? error = EncodeValue(lua, lua.GetTop(), depth, output, maxBytes);
                lua.Pop(1);
                if (error is not null)
                {
                    return error;
                }
            }

            output.Add((byte)']');
            return null;
        }

        output.Add((byte)'{');
        bool first = true;
        lua.PushNil();
        while (lua.Next(index))
        {
            int value = lua.GetTop();
            int key = value - 1;
            if (!first)
            {
                output.Add((byte)',');
            }

            first = false;
            switch (lua.Type(key))
            {
                case LuaType.String:
                    AppendString(output, lua.ToBuffer(key, false));
                    break;
                case LuaType.Number:
                    // Formatted without converting the key in place (that would break lua_next).
                    AppendString(output, Encoding.ASCII.GetBytes(FormatNumber(lua, key)));
                    break;
                default:
                    lua.Pop(2);
                    return "Cannot serialise table: table key must be a number or string";
            }

            output.Add((byte)':');
            string? error = EncodeValue(lua, value, depth, output, maxBytes);
            lua.Pop(1);
            if (error is not null)
            {
                lua.Pop(1);
                return error;
            }
        }

        output.Add((byte)'}');
        return null;
    }

    private static string? AppendNumber(Lua lua, int index, List<byte> output)
    {
        if (!lua.IsInteger(index) && !double.IsFinite(lua.ToNumber(index)))
        {
            return "Cannot serialise number: must not be NaN or Inf";
        }

        Append(output, FormatNumber(lua, index));
        return null;
    }

    /// <summary>Integers as integers, floats as C's <c>%.14g</c> (cjson's format).</summary>
    private static string FormatNumber(Lua lua, int index) => lua.IsInteger(index)
        ? lua.ToInteger(index).ToString(CultureInfo.InvariantCulture)
        : lua.ToNumber(index).ToString("G14", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);

    private static void Append(List<byte> output, string ascii)
    {
        foreach (char c in ascii)
        {
            output.Add((byte)c);
        }
    }

    /// <summary>A JSON string the way cjson writes it: bytes as they are, with ", \, / and control bytes escaped.</summary>
    private static void AppendString(List<byte> output, byte[] bytes)
    {
        output.Add((byte)'"');
        foreach (byte b in bytes)
        {
            switch (b)
            {
                case (byte)'"': Append(output, "\\\""); break;
                case (byte)'\\': Append(output, "\\\\"); break;
                case (byte)'/': Append(output, "\\/"); break;
                case (byte)'\b': Append(output, "\\b"); break;
                case (byte)'\f': Append(output, "\\f"); break;
                case (byte)'\n': Append(output, "\\n"); break;
                case (byte)'\r': Append(output, "\\r"); break;
                case (byte)'\t': Append(output, "\\t"); break;
                case < 0x20 or 0x7F:
                    Append(output, "\\u00" + b.ToString("x2", CultureInfo.InvariantCulture));
                    break;
                default:
                    output.Add(b);
                    break;
            }
        }

        output.Add((byte)'"');
    }

    private sealed class JsonTooLargeException : Exception;
}
