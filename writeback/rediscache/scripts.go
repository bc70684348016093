package rediscache

import "github.com/redis/go-redis/v9"

// appendScript logs one batch and merges its cells, atomically (a Lua
// script runs alone on the server and is replicated as one unit).
//
//	KEYS[1] fence  KEYS[2] ids  KEYS[3] stat  KEYS[4] log  KEYS[5] cells
//	KEYS[6] index  KEYS[7] gens
//	ARGV[1] gen  ARGV[2] batch id  ARGV[3] now (ms)  ARGV[4] log entry
//	ARGV[5] raw points  then the n cells' fields, then their packed aggs
//
// It refuses a sealed generation (gen <= fence), answers a batch id it has
// already applied with the first reply (a transport-level retry must not
// count twice; the HINCRBY makes the retry a write, so that a WAIT after it
// covers the original), and returns "<new cells> <bytes>". Per 2,000
// cells it makes one HMGET, one HSET and, for the new cells, one ZADD.
var appendScript = redis.NewScript(`
local gen = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if gen <= fence then
  return redis.error_reply('HGSEALED generation ' .. ARGV[1] .. ' is sealed (fence ' .. fence .. ')')
end
local done = redis.call('HGET', KEYS[2], ARGV[2])
if done then
  redis.call('HINCRBY', KEYS[3], 'retries', 1)
  return done
end
redis.call('XADD', KEYS[4], '*', 'b', ARGV[4])
local cells, bytes = 0, #ARGV[4] + 48
local n = (#ARGV - 5) / 2
local i = 0
while i < n do
  local m = math.min(n - i, 2000)
  local f0, v0 = 5 + i, 5 + n + i
  local old = redis.call('HMGET', KEYS[5], unpack(ARGV, f0 + 1, f0 + m))
  local out, new = {}, {}
  local unpk, pk, mn, mx = struct.unpack, struct.pack, math.min, math.max
  for x = 1, m do
    local f, v, o = ARGV[f0 + x], ARGV[v0 + x], old[x]
    if o then
      local c1, s1, lo1, hi1 = unpk('<dddd', o)
      local c2, s2, lo2, hi2 = unpk('<dddd', v)
      v = pk('<dddd', c1 + c2, s1 + s2, mn(lo1, lo2), mx(hi1, hi2))
    else
      cells = cells + 1
      bytes = bytes + 2 * #f + 160
      new[#new + 1] = 0
      new[#new + 1] = f
    end
    out[2 * x - 1] = f
    out[2 * x] = v
  end
  redis.call('HSET', KEYS[5], unpack(out))
  if #new > 0 then
    redis.call('ZADD', KEYS[6], unpack(new))
  end
  i = i + m
end
redis.call('HINCRBY', KEYS[3], 'points', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'cells', cells)
redis.call('HINCRBY', KEYS[3], 'bytes', bytes)
redis.call('HSETNX', KEYS[3], 'first', ARGV[3])
redis.call('ZADD', KEYS[7], gen, ARGV[1])
local reply = cells .. ' ' .. bytes
redis.call('HSET', KEYS[2], ARGV[2], reply)
return reply
`)

// cellsScript returns the cells of one shard and generation whose fields
// are in the lexicographic range [ARGV[1], ARGV[2]) of the index, as a
// flat list of field, packed agg. KEYS[1] index, KEYS[2] cells.
var cellsScript = redis.NewScript(`
local fs = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX')
local out = {}
local i = 0
while i < #fs do
  local m = math.min(#fs - i, 4000)
  local part = {}
  for x = 1, m do part[x] = fs[i + x] end
  local vs = redis.call('HMGET', KEYS[2], unpack(part))
  for x = 1, m do
    if vs[x] then
      out[#out + 1] = part[x]
      out[#out + 1] = vs[x]
    end
  end
  i = i + m
end
return out
`)

// sealScript records generation ARGV[1] as sealed in the meta keys and
// moves the open generation past it. KEYS[1] meta, KEYS[2] sealed.
var sealScript = redis.NewScript(`
local g = tonumber(ARGV[1])
local open = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
if g + 1 > open then
  redis.call('HSET', KEYS[1], 'open', string.format('%d', g + 1))
end
redis.call('ZADD', KEYS[2], g, ARGV[1])
return 1
`)

// fenceScript raises a shard's fence to ARGV[1]: appends to generations up
// to it are refused from then on. KEYS[1] fence.
var fenceScript = redis.NewScript(`
local f = tonumber(redis.call('GET', KEYS[1]) or '0')
if f < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)

// commitScript moves generation ARGV[1] from the sealed set to the
// dropping set. KEYS[1] sealed, KEYS[2] dropping.
var commitScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)
