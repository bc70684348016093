package archive

import "errors"

// Error kinds of the archive, in addition to tsstore's. Test with
// errors.Is.
var (
	// ErrCorrupt reports a segment whose stored bytes do not match its
	// manifest record (checksum, size) or cannot be decoded, or that is
	// missing. The error names the segment. Retrying does not help: the
	// segment must be restored from another copy of the archive.
	ErrCorrupt = errors.New("corrupt segment")
	// ErrNotFound reports a segment name that is not in the archive. It
	// comes together with tsstore.ErrInvalid.
	ErrNotFound = errors.New("segment not found")
)
