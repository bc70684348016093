package localcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// A batch record's payload:
//
//	uvarint cell width (ms)
//	uvarint n, then n raw points
//	byte    1 when the processed points are the raw ones, else 0 followed by
//	uvarint m, then m processed points
//
// A point: string metric, uvarint label count, (string name, string value)
// per label, varint timestamp, 8 bytes little-endian float64 bits; a string
// is a uvarint length and its bytes.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendPoint(b []byte, p *tsstore.Point) []byte {
	b = appendString(b, p.Metric)
	b = binary.AppendUvarint(b, uint64(len(p.Labels)))
	for _, l := range p.Labels {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	}
	b = binary.AppendVarint(b, p.Timestamp)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
}

func encodeBatch(b []byte, batch *batchRecord) []byte {
	b = binary.AppendUvarint(b, uint64(batch.width.Milliseconds()))
	b = binary.AppendUvarint(b, uint64(len(batch.raw)))
	for i := range batch.raw {
		b = appendPoint(b, &batch.raw[i])
	}
	if batch.same {
		return append(b, 1)
	}
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(len(batch.processed)))
	for i := range batch.processed {
		b = appendPoint(b, &batch.processed[i])
	}
	return b
}

type batchRecord struct {
	width     time.Duration
	raw       []tsstore.Point
	processed []tsstore.Point
	same      bool
}

var errCorrupt = errors.New("corrupt record")

type decoder struct {
	b   []byte
	err error
	// strs interns strings within one record: metric and label names
	// repeat.
	strs map[string]string
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	raw := d.b[:n]
	d.b = d.b[n:]
	if s, ok := d.strs[string(raw)]; ok {
		return s
	}
	s := string(raw)
	if len(s) <= 64 {
		d.strs[s] = s
	}
	return s
}

func (d *decoder) point() tsstore.Point {
	var p tsstore.Point
	p.Metric = d.str()
	n := d.uvarint()
	if n > tsstore.MaxLabels {
		d.err = errCorrupt
		return p
	}
	if n > 0 {
		p.Labels = make(tsstore.Labels, n)
		for i := range p.Labels {
			p.Labels[i].Name = d.str()
			p.Labels[i].Value = d.str()
		}
	}
	p.Timestamp = d.varint()
	if d.err == nil {
		if len(d.b) < 8 {
			d.err = errCorrupt
			return p
		}
		p.Value = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
	}
	return p
}

func (d *decoder) points() []tsstore.Point {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	ps := make([]tsstore.Point, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		ps = append(ps, d.point())
	}
	return ps
}

func decodeBatch(payload []byte) (*batchRecord, error) {
	d := decoder{b: payload, strs: make(map[string]string)}
	r := &batchRecord{width: time.Duration(d.uvarint()) * time.Millisecond}
	r.raw = d.points()
	if d.err == nil {
		if len(d.b) < 1 {
			d.err = errCorrupt
		} else {
			r.same = d.b[0] == 1
			d.b = d.b[1:]
			if r.same {
				r.processed = r.raw
			} else {
				r.processed = d.points()
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err == nil && r.width <= 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode batch: %w", d.err)
	}
	return r, nil
}
