package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches keys of one hash slot only (see the package
// comment), so each is atomic also in a Cluster. go-redis runs them with
// EVALSHA and falls back to EVAL once per server; inside a pipeline that
// fallback cannot happen, so the scripts run in pipelines (the short index
// scripts) are sent with EVAL.

// The record is one string: a fixed binary header, then the encoded
// session and the tokens (see record.go). The scripts read and write header
// fields by offset; Lua's string.sub is 1-based, so the version, at bytes
// [1,9), is string.sub(h, 2, 9), the horizon, at [25,33),
// string.sub(h, 26, 33), and the session key, at [33,65),
// string.sub(h, 34, 65). The scripts that take an expected key (its 32
// bytes) treat a record of another key, whose handle collides, as missing.

// createScript: KEYS record, tombstone; ARGV record, expiry ms. Returns 0
// if the key is taken, 1 when created. A tombstone of an earlier session
// under the same key goes: the key holds a live session again.
var createScript = goredis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2])
return 1
`)

// updateScript: KEYS record; ARGV expected version (8 bytes), new record,
// expiry ms, expected key. Returns 0 if missing, -1 if the version moved on, 1 when
// replaced. The horizon only grows: a stored horizon beyond the new one is
// kept (the caller raised the auxiliary keys to the new one before).
var updateScript = goredis.NewScript(`
local h = redis.call('GETRANGE', KEYS[1], 0, 64)
if string.byte(h, 1) ~= 3 or string.sub(h, 34, 65) ~= ARGV[4] then return 0 end
if string.sub(h, 2, 9) ~= ARGV[1] then return -1 end
local rec = ARGV[2]
if struct.unpack('>i8', string.sub(h, 26, 33)) > struct.unpack('>i8', string.sub(rec, 26, 33)) then
  rec = string.sub(rec, 1, 25) .. string.sub(h, 26, 33) .. string.sub(rec, 34)
end
redis.call('SET', KEYS[1], rec, 'PXAT', ARGV[3])
return 1
`)

// touchScript: KEYS record; ARGV LastSeen and ExpiresAt (16 bytes), expiry
// ms, new horizon (8 bytes, or "" for none), expected key. Returns 0 if missing, -1 if
// the expiry lies beyond the horizon (the caller must raise the auxiliary
// keys first), 1 when touched. SETRANGE keeps the key's TTL, PEXPIREAT then
// sets the new one.
var touchScript = goredis.NewScript(`
local h = redis.call('GETRANGE', KEYS[1], 0, 64)
if string.byte(h, 1) ~= 3 or string.sub(h, 34, 65) ~= ARGV[4] then return 0 end
local x = struct.unpack('>i8', string.sub(h, 26, 33))
if ARGV[3] ~= '' and struct.unpack('>i8', ARGV[3]) > x then
  redis.call('SETRANGE', KEYS[1], 25, ARGV[3])
  x = struct.unpack('>i8', ARGV[3])
end
if x < tonumber(ARGV[2]) then return -1 end
redis.call('SETRANGE', KEYS[1], 9, ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// deleteScript: KEYS record, tombstone; ARGV tombstone, tombstone TTL ms
// (0 for none), expected key. Returns nil if missing, else the deleted record. Of
// concurrent Deletes exactly one gets the record.
var deleteScript = goredis.NewScript(`
local r = redis.call('GET', KEYS[1])
if not r then return false end
if string.byte(r, 1) ~= 3 or string.sub(r, 34, 65) ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
return r
`)

// indexAddScript: KEYS index; ARGV score ms, mode, member. Mode "add" adds
// the member or raises its score; "xx" only raises the score of a member
// that is there, so a deleted session is never indexed again. The set's
// TTL is raised to at least the score, in the same step, so the set never
// exists without a TTL nor expires before a member.
var indexAddScript = goredis.NewScript(`
if ARGV[2] == 'xx' then
  redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[1], ARGV[3])
else
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[3])
end
local exp = redis.call('PEXPIRETIME', KEYS[1])
if exp == -1 or (exp >= 0 and exp < tonumber(ARGV[1])) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
end
return 1
`)

// indexReadScript: KEYS index. Drops the members whose score (the horizon of
// their record) has passed by the server's clock (strictly: Redis keeps a
// key through the millisecond of its expiry), and returns the rest as
// member, score pairs, scores as Redis formats them.
var indexReadScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now))
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`)

// indexPruneScript: KEYS index; ARGV member, score pairs. Removes each
// member whose score is still the one given: a member re-added meanwhile (by
// a Create that has just finished, see the package comment) stays.
var indexPruneScript = goredis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

// releaseScript: KEYS lock; ARGV fence. Deletes the lock only if it still
// holds this fence.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
