namespace Bitcask.Server.Scripting;

/// <summary>
/// The Lua code that turns a fresh Lua state into Redis's script sandbox. It runs once per state, with the full
/// libraries the state opened (base, string, table, math, utf8, debug), and returns the three things the managed
/// side keeps: the environment scripts run in, the function that (re)arms the time-limit hook, and the list of
/// read-only library proxies (cleared after every run in case a script <c>rawset</c> into one).
/// </summary>
/// <remarks>
/// Why the time limit lives here: a hook or a function written in C# must never raise a Lua error, because
/// <c>lua_error</c> is a <c>longjmp</c> and jumping over managed frames is undefined behaviour in .NET. So the
/// instruction-count hook is the debug library's own native hook calling the Lua function <c>hook</c> below, which
/// asks C# (<c>expired</c>, which only returns a value) and raises the error itself. The same split is used for
/// <c>redis.call</c>: C# returns the error as a value, the Lua wrapper raises it.
/// </remarks>
internal static class LuaSandbox
{
    /// <summary>Chunk name of user scripts: error messages read <c>user_script:LINE: ...</c> as in Redis 7.</summary>
    internal const string ScriptChunkName = "@user_script";

    /// <summary>
    /// The bootstrap chunk. Arguments: raw_call, raw_pcall, expired, raw_sha1hex, hook_count, raw_json_encode,
    /// raw_json_decode, json_null (a light userdata NULL, cjson.null).
    /// </summary>
    internal const string Bootstrap = """
        local raw_call, raw_pcall, expired, raw_sha1hex, hook_count, raw_json_encode, raw_json_decode, json_null = ...
        local sethook = debug.sethook
        local error, type, select, tostring, tonumber = error, type, select, tostring, tonumber
        local rawget, next, setmetatable = rawget, next, setmetatable
        local math_type, math_floor, math_tointeger, format = math.type, math.floor, math.tointeger, string.format

        -- Time limit: every hook_count instructions ask the host whether the deadline passed. Once it has, the
        -- hook fires on every instruction and raises each time, so a script that catches the error with pcall
        -- cannot make progress either.
        local function hook()
          local message = expired()
          if message then
            sethook(hook, "", 1)
            error({err = message}, 0)
          end
        end
        local function arm() sethook(hook, "", hook_count) end

        local proxies = {}
        local function readonly(real)
          local proxy = setmetatable({}, {
            __index = real,
            __newindex = function() error("Attempt to modify a readonly table", 2) end,
            __pairs = function() return next, real, nil end,
            __len = function() return #real end,
            __metatable = false,
          })
          proxies[#proxies + 1] = proxy
          return proxy
        end

        -- Lua 5.1 names scripts written for Redis still use.
        table.getn = function(t) return #t end
        math.pow = function(x, y) return x ^ y end
        math.mod = math.fmod
        math.log10 = function(x) return math.log(x, 10) end

        -- Redis's error-string rule (luaPushErrorBuff): "-CODE message" keeps its code, text without one gets ERR.
        local function error_text(s)
          if s:sub(1, 1) ~= "-" then s = "-" .. s end
          local space = s:find(" ", 1, true)
          local code, message
          if space then
            code, message = s:sub(2, space - 1), s:sub(space + 1)
          else
            code, message = "ERR", s:sub(2)
          end
          message = message:gsub("^[\r\n]+", "")
          message = message:gsub("[\r\n]+$", "")
          return code .. " " .. message
        end

        local redis = {}
        function redis.call(...)
          local reply, failed = raw_call(...)
          if failed then error(reply, 0) end
          return reply
        end
        redis.pcall = raw_pcall
        function redis.error_reply(...)
          local text = ...
          if select("#", ...) ~= 1 or type(text) ~= "string" then
            return {err = "ERR wrong number or type of arguments"}
          end
          return {err = error_text(text)}
        end
        function redis.status_reply(...)
          local text = ...
          if select("#", ...) ~= 1 or type(text) ~= "string" then
            return {err = "ERR wrong number or type of arguments"}
          end
          return {ok = text}
        end
        function redis.sha1hex(...)
          if select("#", ...) ~= 1 then error({err = "ERR wrong number of arguments"}) end
          local s = ...
          if type(s) == "number" then s = tostring(s) elseif type(s) ~= "string" then s = "" end
          return raw_sha1hex(s)
        end
        function redis.log(...)
          if select("#", ...) < 2 then error({err = "ERR redis.log() requires two arguments or more."}) end
          local level = ...
          if type(level) ~= "number" then error({err = "ERR First argument must be a number (log level)."}) end
          if level < 0 or level > 3 then error({err = "ERR Invalid debug level."}) end
        end
        function redis.setresp(...)
          if select("#", ...) ~= 1 then error({err = "ERR redis.setresp() requires one argument."}) end
          local v = tonumber((...))
          if v ~= 2 and v ~= 3 then error({err = "ERR RESP version must be 2 or 3."}) end
          if v == 3 then error({err = "ERR RESP3 replies inside scripts are not supported by this server"}) end
        end
        function redis.set_repl(...)
          if select("#", ...) ~= 1 then error({err = "ERR redis.set_repl() requires one argument."}) end
          local flags = tonumber((...))
          if flags == nil or flags < 0 or flags > 3 then
            error({err = "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."})
          end
        end
        function redis.replicate_commands() return true end
        function redis.breakpoint() return false end
        function redis.debug() end
        redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
        redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
        redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = "7.2.0", 0x070200

        -- LuaBitOp ("bit"), which Redis bundles: 32-bit signed results.
        local function tobit(x)
          local n = tonumber(x)
          if n == nil then error("bad argument to 'bit' function (number expected, got " .. type(x) .. ")", 3) end
          if math_type(n) == "float" then
            if n ~= n or n == math.huge or n == -math.huge then return 0 end
            n = math_tointeger(math_floor(n + 0.5) % 4294967296)
          end
          n = n & 0xFFFFFFFF
          if n >= 0x80000000 then n = n - 0x100000000 end
          return n
        end
        local function u32(x) return tobit(x) & 0xFFFFFFFF end
        local function fold(op)
          return function(x, ...)
            local r = u32(x)
            for i = 1, select("#", ...) do r = op(r, u32((select(i, ...)))) end
            return tobit(r)
          end
        end
        local bit = {
          tobit = tobit,
          bnot = function(x) return tobit(~u32(x)) end,
          band = fold(function(a, b) return a & b end),
          bor = fold(function(a, b) return a | b end),
          bxor = fold(function(a, b) return a ~ b end),
          lshift = function(x, n) return tobit(u32(x) << (u32(n) & 31)) end,
          rshift = function(x, n) return tobit(u32(x) >> (u32(n) & 31)) end,
          arshift = function(x, n) return tobit(tobit(x) // (1 << (u32(n) & 31))) end,
          rol = function(x, n) local s, v = u32(n) & 31, u32(x) return tobit((v << s) | (v >> (32 - s))) end,
          ror = function(x, n) local s, v = u32(n) & 31, u32(x) return tobit((v >> s) | (v << (32 - s))) end,
          bswap = function(x)
            local v = u32(x)
            return tobit(((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24))
          end,
          tohex = function(x, n)
            n = n == nil and 8 or tobit(n)
            local digits = "%0" .. (n < 0 and math.min(-n, 8) or math.min(n, 8)) .. (n < 0 and "X" or "x")
            local width = n < 0 and math.min(-n, 8) or math.min(n, 8)
            return format(digits, u32(x) & ((1 << (4 * width)) - 1))
          end,
        }

        -- cjson (the subset scripts use: encode, decode, null).
        local cjson = {null = json_null}
        function cjson.encode(...)
          if select("#", ...) ~= 1 then error("bad argument #1 to 'encode' (expected 1 argument)", 2) end
          local text, err = raw_json_encode(...)
          if err ~= nil then error(err, 2) end
          return text
        end
        function cjson.decode(...)
          local text = ...
          if select("#", ...) ~= 1 then error("bad argument #1 to 'decode' (expected 1 argument)", 2) end
          if type(text) ~= "string" then
            error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
          end
          local value, err = raw_json_decode(text)
          if err ~= nil then error(err, 2) end
          return value
        end

        -- A script may not give tables a __gc metamethod: finalizers could run while the host is inside a
        -- redis.call, where a Lua error must not be raised.
        local function safe_setmetatable(t, mt)
          if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
            error("Script attempted to set a __gc metamethod, which scripts may not use", 2)
          end
          return setmetatable(t, mt)
        end

        -- xpcall runs its handler after unwinding (as pcall + call). Lua runs a real message handler with hooks
        -- off when the error came from a hook (the time limit), so a looping handler could never be stopped.
        local pcall, pack, unpack = pcall, table.pack, table.unpack
        local function safe_xpcall(f, handler, ...)
          if type(handler) ~= "function" then
            error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
          end
          local results = pack(pcall(f, ...))
          if results[1] then return unpack(results, 1, results.n) end
          local _, value = pcall(handler, results[2])
          return false, value
        end

        local allowed = {
          assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
          rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset, select = select,
          getmetatable = getmetatable, setmetatable = safe_setmetatable, tonumber = tonumber,
          tostring = tostring, type = type, xpcall = safe_xpcall, unpack = table.unpack, _VERSION = _VERSION,
          print = function() end,
          string = readonly(string), table = readonly(table), math = readonly(math), utf8 = readonly(utf8),
          redis = readonly(redis), bit = readonly(bit), cjson = readonly(cjson),
        }
        setmetatable(allowed, {
          __index = function(_, name)
            error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
          end,
          __metatable = false,
        })
        local env = setmetatable({}, {
          __index = allowed,
          __newindex = function(_, name)
            error("Script attempted to create global variable '" .. tostring(name) .. "'", 2)
          end,
          __metatable = false,
        })
        allowed._G = env

        -- Scripts cannot reach the string library through getmetatable("").__index either.
        getmetatable("").__metatable = false

        return env, arm, proxies
        """;
}
