package rediscache

import (
	"strconv"
	"strings"
)

// keyspace names the cache's keys. The meta keys carry the hash tag
// {prefix}; every key of shard s carries {prefix:s}, so that one shard's
// keys live in one Redis Cluster slot and one Lua script or MULTI may
// touch them all. The keys of shard s and generation g:
//
//	{p:s}:fence        highest sealed generation (appends to it or older are refused)
//	{p:s}:epoch        the epoch of the cache that may write the shard (see lease.go)
//	{p:s}:gens         sorted set of generations with data in the shard
//	{p:s}:g<g>:log     stream: one entry per batch: raw points, cell width, processed points
//	{p:s}:g<g>:cells   hash: cell field -> packed Agg (see appendField)
//	{p:s}:g<g>:index   sorted set of the cell fields, all with score 0
//	{p:s}:g<g>:stat    hash: points, cells, bytes, first (ms), retries
//	{p:s}:g<g>:ids     hash: batch id -> stream entry ID, to apply a retried batch once
//	{p:s}:g<g>:pend    hash: batch id -> stream entry ID of the batches not yet folded
//	{p:s}:g<g>:folds   the number of folds applied (only folds write it and the cells)
//
// and the meta keys:
//
//	{p}:meta      hash: open = the open generation
//	{p}:sealed    sorted set of sealed, uncommitted generations
//	{p}:dropping  set of committed generations whose keys are being deleted
//	{p}:writer    the writer id and its first generation (writeback.FormatWriterFile)
//	{p}:quarantine hash: cell identity -> writeback.QuarantinedCell (JSON)
//	{p}:epoch     the epoch of the cache that may write the prefix (see lease.go)
//	{p}:lease     "<owner> <epoch>", expiring: the lease of a cache in a cluster
type keyspace struct {
	prefix string
	tags   []string // "{prefix:s}" per shard
}

func newKeyspace(prefix string, shards int) keyspace {
	k := keyspace{prefix: prefix, tags: make([]string, shards)}
	for s := range k.tags {
		k.tags[s] = "{" + prefix + ":" + strconv.Itoa(s) + "}"
	}
	return k
}

func (k *keyspace) meta() string     { return "{" + k.prefix + "}:meta" }
func (k *keyspace) sealed() string   { return "{" + k.prefix + "}:sealed" }
func (k *keyspace) dropping() string { return "{" + k.prefix + "}:dropping" }
func (k *keyspace) writer() string   { return "{" + k.prefix + "}:writer" }
func (k *keyspace) quarantine() string {
	return "{" + k.prefix + "}:quarantine"
}
func (k *keyspace) epoch() string { return "{" + k.prefix + "}:epoch" }
func (k *keyspace) lease() string { return "{" + k.prefix + "}:lease" }

func (k *keyspace) fence(s int) string { return k.tags[s] + ":fence" }
func (k *keyspace) gens(s int) string  { return k.tags[s] + ":gens" }
func (k *keyspace) shardEpoch(s int) string {
	return k.tags[s] + ":epoch"
}

func (k *keyspace) gen(s int, g uint64, what string) string {
	var b strings.Builder
	b.Grow(len(k.tags[s]) + 24 + len(what))
	b.WriteString(k.tags[s])
	b.WriteString(":g")
	b.WriteString(strconv.FormatUint(g, 10))
	b.WriteByte(':')
	b.WriteString(what)
	return b.String()
}

func (k *keyspace) log(s int, g uint64) string   { return k.gen(s, g, "log") }
func (k *keyspace) cells(s int, g uint64) string { return k.gen(s, g, "cells") }
func (k *keyspace) index(s int, g uint64) string { return k.gen(s, g, "index") }
func (k *keyspace) stat(s int, g uint64) string  { return k.gen(s, g, "stat") }
func (k *keyspace) ids(s int, g uint64) string   { return k.gen(s, g, "ids") }
func (k *keyspace) pend(s int, g uint64) string  { return k.gen(s, g, "pend") }
func (k *keyspace) folds(s int, g uint64) string { return k.gen(s, g, "folds") }

// genKeys lists every key of shard s and generation g.
func (k *keyspace) genKeys(s int, g uint64) []string {
	return []string{k.log(s, g), k.cells(s, g), k.index(s, g), k.stat(s, g), k.ids(s, g), k.pend(s, g), k.folds(s, g)}
}
