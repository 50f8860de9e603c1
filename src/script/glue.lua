-- ringkv's Lua environment for EVAL scripts, run once per Lua state.
-- Arguments: the real globals table, the read-only proxy scripts see as
-- their globals, the helper table filled by Rust (H), the debug library
-- (kept only here), and setfenv (removed from the globals below).
local real, P, H, dbg, setfenv = ...
local error, type, tostring, select, setmetatable, rawset, xpcall =
    error, type, tostring, select, setmetatable, rawset, xpcall

local function readonly()
    error("Attempt to modify a readonly table", 2)
end

local function protect(t)
    return setmetatable({}, { __index = t, __newindex = readonly, __metatable = false })
end

-- Message handler: the error as a table {err=..., source=..., line=...},
-- the location being the innermost frame of the user's script.
-- An error a Rust function raised, as a Lua value: an error reply
-- becomes {err=...}, anything else its message.
local function unwrap(e)
    if type(e) == "userdata" then
        local m, reply = H.errval(e)
        if reply then
            return { err = m }
        end
        return m
    end
    return e
end

local function handler(e)
    e = unwrap(e)
    local src, line
    local lvl = 2
    while true do
        local i = dbg.getinfo(lvl, "Sl")
        if not i then
            break
        end
        if i.source == "@user_script" or i.source == "@user_function" then
            src, line = i.source, i.currentline
            break
        end
        lvl = lvl + 1
    end
    local msg
    if type(e) == "table" and type(e.err) == "string" then
        msg = e.err
    elseif type(e) == "table" then
        msg = "ERR unknown error"
    else
        msg = "ERR " .. tostring(e)
    end
    return { err = msg, source = src, line = line }
end

H.run = function(f, keys, args)
    if keys == nil then
        return xpcall(f, handler)
    end
    -- A function (FCALL) gets KEYS and ARGV as its arguments.
    return xpcall(function()
        return f(keys, args)
    end, handler)
end
-- pcall gives the message of an error reply (raised by redis.call or
-- error({err=...})) as a string, as Redis 7.0 does.
local base_pcall = pcall
local function pcall_result(ok, ...)
    if not ok then
        local e = unwrap((...))
        if type(e) == "table" and type(e.err) == "string" then
            e = e.err
        end
        return false, e
    end
    return ok, ...
end
rawset(real, "pcall", function(f, ...)
    return pcall_result(base_pcall(f, ...))
end)

H.setenv = function(f)
    setfenv(f, P)
    return f
end

local redis = {}
-- redis.call and redis.pcall are Rust functions set for each run (they
-- reach the shard running the script); H.redis lets Rust set them.
H.redis = redis
redis.error_reply = H.error_reply
redis.status_reply = H.status_reply
redis.sha1hex = H.sha1hex
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.log = H.log
redis.setresp = H.setresp
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = H.set_repl
redis.replicate_commands = function()
    return true
end
redis.breakpoint = function()
    return false
end
redis.debug = function() end
redis.acl_check_cmd = H.acl_check_cmd
redis.REDIS_VERSION = H.version
redis.REDIS_VERSION_NUM = H.version_num

-- What Redis 7.0 removes from the globals.
for _, name in ipairs({ "debug", "print", "setfenv", "getfenv", "newproxy", "module", "require",
    "loadfile", "dofile", "os", "io", "package" }) do
    rawset(real, name, nil)
end

rawset(real, "redis", protect(redis))
for _, name in ipairs({ "string", "math", "table", "coroutine", "bit", "cjson", "struct", "cmsgpack" }) do
    local lib = real[name]
    if lib ~= nil then
        rawset(real, name, protect(lib))
    end
end
rawset(real, "_G", P)

-- Functions: every library's code runs with FG as its globals. While a
-- library's top level runs (FUNCTION LOAD) FG shows only the load API,
-- a `redis` table with register_function, log and the version; when its
-- functions run later FG shows the usual globals.
local load_redis = {
    register_function = H.register_function,
    log = H.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = H.version,
    REDIS_VERSION_NUM = H.version_num,
}
local function missing(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
setmetatable(load_redis, { __index = missing, __newindex = readonly, __metatable = false })
local load_api = setmetatable({ redis = protect(load_redis) }, {
    __index = missing,
    __newindex = readonly,
    __metatable = false,
})
local fg_meta = { __index = real, __newindex = readonly, __metatable = false }
local FG = setmetatable({}, fg_meta)
H.load_lib = function(f)
    setfenv(f, FG)
    fg_meta.__index = load_api
    local ok, e = xpcall(f, handler)
    fg_meta.__index = real
    return ok, e
end

setmetatable(real, {
    __index = function(_, k)
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end,
    __newindex = readonly,
    __metatable = false,
})
setmetatable(P, { __index = real, __newindex = readonly, __metatable = false })
