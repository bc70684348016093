package tsstore

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Label is one name/value pair of a series' identity.
type Label struct {
	Name, Value string
}

// Labels is a set of labels sorted by name, with unique names and non-empty
// values. The zero value is the empty set. Build one with [NewLabels] or
// [FromMap]; a literal must be sorted and is checked by [Labels.Validate].
type Labels []Label

// NewLabels returns the labels of the name/value pairs kv, sorted by name. It
// fails with ErrInvalid on an odd count, a duplicate or malformed name, or a
// bad value.
func NewLabels(kv ...string) (Labels, error) {
	if len(kv)%2 != 0 {
		return nil, Errorf(ErrInvalid, "labels: odd number of arguments (%d): want name/value pairs", len(kv))
	}
	ls := make(Labels, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, Label{Name: kv[i], Value: kv[i+1]})
	}
	ls.sort()
	if err := ls.Validate(); err != nil {
		return nil, err
	}
	return ls, nil
}

// FromMap returns the labels of m, sorted by name and validated.
func FromMap(m map[string]string) (Labels, error) {
	ls := make(Labels, 0, len(m))
	for n, v := range m {
		ls = append(ls, Label{Name: n, Value: v})
	}
	ls.sort()
	if err := ls.Validate(); err != nil {
		return nil, err
	}
	return ls, nil
}

func (ls Labels) sort() {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
}

// Validate checks that ls is sorted by name, that every name is a valid
// label name and unique, that every value is valid, and that there are at
// most MaxLabels labels. The error, of kind ErrInvalid, names the offending
// label.
func (ls Labels) Validate() error {
	if len(ls) > MaxLabels {
		return Errorf(ErrInvalid, "labels: %d labels, more than the limit of %d", len(ls), MaxLabels)
	}
	for i, l := range ls {
		if err := validateLabelName(l.Name); err != nil {
			return err
		}
		if err := validateLabelValue(l.Name, l.Value); err != nil {
			return err
		}
		if i > 0 {
			switch c := strings.Compare(ls[i-1].Name, l.Name); {
			case c == 0:
				return Errorf(ErrInvalid, "labels: duplicate label name %q", l.Name)
			case c > 0:
				return Errorf(ErrInvalid, "labels: not sorted: %q before %q", ls[i-1].Name, l.Name)
			}
		}
	}
	return nil
}

// Get returns the value of the label name, or "" when there is none.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Has reports whether ls has a label name.
func (ls Labels) Has(name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// Hash returns a hash of ls that is stable across processes and versions
// (xxhash64 of the names and values with separators), for sharding and keys.
// Equal label sets have equal hashes.
func (ls Labels) Hash() uint64 {
	d := xxhash.New()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	}
	return d.Sum64()
}

var sep = []byte{0xff}

// Equal reports whether ls and o hold the same labels.
func (ls Labels) Equal(o Labels) bool {
	return slices.Equal(ls, o)
}

// Compare orders label sets: by the first differing name, then value; a
// prefix sorts first. It returns -1, 0 or +1.
func (ls Labels) Compare(o Labels) int {
	for i := 0; i < len(ls) && i < len(o); i++ {
		if c := strings.Compare(ls[i].Name, o[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(ls[i].Value, o[i].Value); c != 0 {
			return c
		}
	}
	switch {
	case len(ls) < len(o):
		return -1
	case len(ls) > len(o):
		return 1
	}
	return 0
}

// Key returns a string that identifies ls exactly, usable as a map key
// (names and values joined with separator bytes that valid labels never
// contain).
func (ls Labels) Key() string {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
		b.WriteByte(0xff)
	}
	return b.String()
}

// Map returns the labels as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// Copy returns a copy of ls that shares no memory with it.
func (ls Labels) Copy() Labels {
	if ls == nil {
		return nil
	}
	return slices.Clone(ls)
}

// String formats ls as {name="value", ...} with Go-quoted values.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}
