package localcache

import "slices"

// keyTable finds ids by keys of a few uint32s (a decoder's label sets by
// their label count and the ids of their names and values). It is an
// open-addressed table whose slots hold short keys themselves and longer
// ones in an arena, so that a lookup reads neither a string nor a pointer
// and, for a key of up to two labels, one cache line: a log's records
// repeat a label set once per record, which may be once per line.
type keyTable struct {
	slots []keySlot // a power of two of them
	long  []uint32  // the keys longer than a slot holds
	used  int
}

// keySlot is 32 bytes: two to a cache line.
type keySlot struct {
	hash uint32
	id   int32
	len  int32 // of the key; 0: a free slot (no key is empty)
	key  [shortKey]uint32
}

// shortKey is the longest key a slot holds; a longer one is in long, at
// key[0].
const shortKey = 5

// hashKey returns the hash of a key.
func hashKey(key []uint32) uint64 {
	h := uint64(len(key))
	for _, x := range key {
		h = (h ^ uint64(x)) * 0x9E3779B97F4A7C15
		h ^= h >> 29
	}
	return h
}

func (t *keyTable) keyOf(s *keySlot) []uint32 {
	if s.len <= shortKey {
		return s.key[:s.len]
	}
	return t.long[s.key[0] : s.key[0]+uint32(s.len)]
}

// find returns the id of key, not empty, or false.
func (t *keyTable) find(key []uint32, h uint64) (int32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.len == 0 {
			return 0, false
		}
		if s.hash == uint32(h>>32) && slices.Equal(t.keyOf(s), key) {
			return s.id, true
		}
	}
}

// add adds key (not empty, and not in the table) with id.
func (t *keyTable) add(key []uint32, h uint64, id int32) {
	if 2*(t.used+1) > len(t.slots) {
		old := t.slots
		t.slots = make([]keySlot, max(1024, 2*len(old)))
		for i := range old {
			if old[i].len != 0 {
				t.place(&old[i], hashKey(t.keyOf(&old[i])))
			}
		}
	}
	s := keySlot{hash: uint32(h >> 32), id: id, len: int32(len(key))}
	if len(key) <= shortKey {
		copy(s.key[:], key)
	} else {
		s.key[0] = uint32(len(t.long))
		t.long = append(t.long, key...)
	}
	t.place(&s, h)
	t.used++
}

func (t *keyTable) place(s *keySlot, h uint64) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].len != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = *s
}
