package pgsink

// SetBeforeCommit makes s call f in Apply after the read-model writes and the
// checkpoint are sent and before the commit, to stop a run exactly there.
func SetBeforeCommit(s *Sink, f func()) { s.beforeCommit = f }
