package localcache

import (
	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// sectionV1 reads the points of a version 1 record (wire.AppendPoints)
// into s: each point's metric and labels are shared through d.shared, so
// points of one series have one identity, which finds their series.
func (d *decoder) sectionV1(r *wire.Reader, s *section) {
	n := r.Count()
	d.v1Pts = d.v1Pts[:0]
	for i := 0; i < n && r.Err == nil; i++ {
		d.v1Pts = append(d.v1Pts, r.SharedPoint(d.shared))
	}
	if r.Err != nil {
		return
	}
	clear(d.v1Loc)
	for i := range d.v1Pts {
		p := &d.v1Pts[i]
		k := identityOf(p.Metric, p.Labels)
		id, ok := d.v1IDs[k]
		if !ok {
			id = int32(len(d.series))
			d.series = append(d.series, tsstore.SeriesLabels{Metric: p.Metric, Labels: p.Labels})
			d.v1IDs[k] = id
		}
		loc, ok := d.v1Loc[id]
		if !ok {
			loc = int32(len(s.series))
			s.series = append(s.series, id)
			d.v1Loc[id] = loc
		}
		s.ids = append(s.ids, loc)
		s.times = append(s.times, p.Timestamp)
		s.values = append(s.values, p.Value)
	}
	clear(d.v1Pts)
}
