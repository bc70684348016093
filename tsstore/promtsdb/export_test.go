package promtsdb

// CommitEvery makes s commit every n samples that may be out of order
// (oooCommitSamples by default), for tests of many commits per Write and
// for a benchmark to compare with one commit per Write.
func CommitEvery(s *Store, n int) { s.oooCommit = n }
