package rediscache

import "github.com/redis/go-redis/v9"

// appendScript logs one batch, atomically (a Lua script runs alone on the
// server and is replicated as one unit). It does no per-point or per-cell
// work: the cells of the batch are folded into the cells hash later, in
// bulk (see Cache.foldShard), and until then the batch is listed in the
// pending hash.
//
//	KEYS[1] fence  KEYS[2] ids  KEYS[3] stat  KEYS[4] log  KEYS[5] pend
//	KEYS[6] gens  KEYS[7] the shard's epoch
//	ARGV[1] gen  ARGV[2] batch id  ARGV[3] now (ms)  ARGV[4] raw points
//	ARGV[5] bytes  ARGV[6] cell width (ms)  ARGV[7] log entry
//	ARGV[8] processed points' entry ("" when they are the raw points)
//	ARGV[9] the cache's epoch
//
// It refuses a cache whose epoch is not the shard's (fenced: another cache
// took the prefix over, see lease.go), a sealed generation (gen <= fence), answers a batch id it has
// already applied with the first reply (a transport-level retry must not
// count twice; the HINCRBY makes the retry a write, so that a WAIT after it
// covers the original), and returns the stream entry ID.
var appendScript = redis.NewScript(epochCheck("KEYS[7]", "ARGV[9]") + `
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
local id
if ARGV[8] ~= '' then
  id = redis.call('XADD', KEYS[4], '*', 'b', ARGV[7], 'w', ARGV[6], 'p', ARGV[8])
else
  id = redis.call('XADD', KEYS[4], '*', 'b', ARGV[7], 'w', ARGV[6])
end
redis.call('HSET', KEYS[5], ARGV[2], id)
redis.call('HSET', KEYS[2], ARGV[2], id)
redis.call('HINCRBY', KEYS[3], 'points', ARGV[4])
redis.call('HINCRBY', KEYS[3], 'bytes', ARGV[5])
redis.call('HSETNX', KEYS[3], 'first', ARGV[3])
redis.call('ZADD', KEYS[6], gen, ARGV[1])
return id
`)

// cellsScript returns the fold count of one shard and generation, then
// the cells whose fields are in the lexicographic range [ARGV[1], ARGV[2])
// of the index, as a flat list of field, packed agg: one consistent
// snapshot, so that the client can tell which pending cells it holds are
// in it. KEYS[1] index, KEYS[2] cells, KEYS[3] fold count.
var cellsScript = redis.NewScript(`
local out = {redis.call('GET', KEYS[3]) or '0'}
local fs = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX')
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
// moves the open generation past it. KEYS[1] meta, KEYS[2] sealed,
// KEYS[3] the prefix's epoch, ARGV[2] the cache's epoch.
var sealScript = redis.NewScript(epochCheck("KEYS[3]", "ARGV[2]") + `
local g = tonumber(ARGV[1])
local open = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
if g + 1 > open then
  redis.call('HSET', KEYS[1], 'open', string.format('%d', g + 1))
end
redis.call('ZADD', KEYS[2], g, ARGV[1])
return 1
`)

// fenceScript raises a shard's fence to ARGV[1]: appends to generations up
// to it are refused from then on. KEYS[1] fence, KEYS[2] the shard's
// epoch, ARGV[2] the cache's epoch.
var fenceScript = redis.NewScript(epochCheck("KEYS[2]", "ARGV[2]") + `
local f = tonumber(redis.call('GET', KEYS[1]) or '0')
if f < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)

// commitScript moves generation ARGV[1] from the sealed set to the
// dropping set. KEYS[1] sealed, KEYS[2] dropping, KEYS[3] the prefix's
// epoch, ARGV[2] the cache's epoch.
var commitScript = redis.NewScript(epochCheck("KEYS[3]", "ARGV[2]") + `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)
