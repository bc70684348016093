package localcache

import "slices"

// setTable finds a decoder's label sets by key (label count, then the
// string ids of the names and values) and holds each set's first series.
// It is an open-addressed table of one-cache-line slots holding short keys
// themselves and longer ones in an arena, so that finding a set of up to
// three labels and the series of its first two fields reads one cache
// line, neither a string nor a pointer: a log's records repeat a label
// set once per record, which may be once per line.
type setTable struct {
	slots []setSlot // a power of two of them
	long  []uint32  // the keys longer than a slot holds
	used  int
	sink  uint32 // the sum of what warm read, so that its loads are kept
}

// setSlot is 64 bytes.
type setSlot struct {
	hash uint32
	id   int32 // the set's
	len  int32 // of the key; 0: a free slot (no key is empty)
	n    int32 // series of the set
	key  [shortKey]uint32
	// The set's first series: metric (a string id) and series id.
	first [slotSeries][2]int32
}

const (
	// shortKey is the longest key a slot holds; a longer one is in long,
	// at key[0].
	shortKey = 8
	// slotSeries is the number of series a slot holds; the others are
	// in decoder.more.
	slotSeries = 2
)

// hashKey returns the hash of a key.
func hashKey(key []uint32) uint64 {
	h := hashStart(len(key))
	for _, x := range key {
		h = hashStep(h, x)
	}
	return h
}

// hashStart is the hash of the empty start of a key of n entries (the
// decoder hashes a key as it reads it, from its length).
func hashStart(n int) uint64 { return uint64(n) }

// hashStep returns the hash of a key's start whose hash is h, with x
// appended.
func hashStep(h uint64, x uint32) uint64 {
	h = (h ^ uint64(x)) * 0x9E3779B97F4A7C15
	return h ^ h>>29
}

func (t *setTable) keyOf(s *setSlot) []uint32 {
	if s.len <= shortKey {
		return s.key[:s.len]
	}
	return t.long[s.key[0] : s.key[0]+uint32(s.len)]
}

// find returns the slot of key, not empty, or nil. The slot is valid
// until the next add.
func (t *setTable) find(key []uint32, h uint64) *setSlot {
	if len(t.slots) == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.len == 0 {
			return nil
		}
		if s.hash == uint32(h>>32) && slices.Equal(t.keyOf(s), key) {
			return s
		}
	}
}

// warm reads the slot where the find of each of the hashes starts: the
// loads do not depend on each other, so the processor has many of their
// cache misses in flight at once, and the finds then read the slots from
// cache.
func (t *setTable) warm(hashes []uint64) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	var x uint32
	for _, h := range hashes {
		x += t.slots[h&mask].hash
	}
	t.sink = x
}

// add adds key (not empty, and not in the table) with id and returns its
// slot, valid until the next add.
func (t *setTable) add(key []uint32, h uint64, id int32) *setSlot {
	if 2*(t.used+1) > len(t.slots) {
		old := t.slots
		t.slots = make([]setSlot, max(1024, 2*len(old)))
		for i := range old {
			if old[i].len != 0 {
				t.place(&old[i], hashKey(t.keyOf(&old[i])))
			}
		}
	}
	s := setSlot{hash: uint32(h >> 32), id: id, len: int32(len(key))}
	if len(key) <= shortKey {
		copy(s.key[:], key)
	} else {
		s.key[0] = uint32(len(t.long))
		t.long = append(t.long, key...)
	}
	t.used++
	return t.place(&s, h)
}

func (t *setTable) place(s *setSlot, h uint64) *setSlot {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].len != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = *s
	return &t.slots[i]
}
