package tsstore

// Processor is the processing logic, versioned: it turns each raw Point
// into the Points that are aggregated into cells. The cache's log and the
// archive keep raw points as written; cells hold what the processor made of
// them, so a bug in a processor is fixed by reprocessing the archive with a
// new version.
//
// Process must be deterministic (the same input gives the same output) and
// safe for concurrent use.
type Processor interface {
	// Version names the logic, e.g. "orders/2". It is recorded with every
	// reprocessed store version.
	Version() string
	// Process appends to dst the points derived from p and returns the
	// extended slice. An error (wrap ErrInvalid for bad events) rejects
	// the whole write that p belongs to. Process must not keep dst, nor
	// refer to its memory, once it returns: the engine reuses it for the
	// next write.
	Process(dst []Point, p Point) ([]Point, error)
}

// Identity is the Processor that aggregates every point as it is.
type Identity struct{}

// Version returns "identity".
func (Identity) Version() string { return "identity" }

// Process appends p to dst.
func (Identity) Process(dst []Point, p Point) ([]Point, error) { return append(dst, p), nil }

// ProcessorFunc adapts a function to a Processor with a fixed version.
type ProcessorFunc struct {
	V string
	F func(dst []Point, p Point) ([]Point, error)
}

// Version returns f.V.
func (f ProcessorFunc) Version() string { return f.V }

// Process calls f.F.
func (f ProcessorFunc) Process(dst []Point, p Point) ([]Point, error) { return f.F(dst, p) }
