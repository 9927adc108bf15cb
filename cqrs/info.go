package cqrs

import (
	"os"
	"strconv"
	"time"
)

// owner names this process in runners' status: host:pid.
var owner = func() string {
	h, _ := os.Hostname()
	return h + ":" + strconv.Itoa(os.Getpid())
}()

// StaleAfter is how long after its last report a runner that said it was
// running is shown as stopped: runners report every ControlInterval (1s by
// default).
const StaleAfter = 15 * time.Second

// ShownState is the state tools show for a runner that reported state at
// at: [StateStopped] once the report is older than [StaleAfter], unless the
// runner said it was parked (a parked runner stays parked).
func ShownState(state string, at time.Time) string {
	if state != string(StateParked) && time.Since(at) > StaleAfter {
		return string(StateStopped)
	}
	return state
}

// ProjectionInfo is what tools show about a projection: its checkpoint
// against the head of the log, and the latest status its runner reported
// through a [StatusRecorder]. Sinks that keep status reports return it from
// their Inspect.
type ProjectionInfo struct {
	Name string `json:"name"`
	// State is running, waiting, parked or stopped (see [ShownState]);
	// rebuilding while a blue/green rebuild is under way or paused (the live
	// version keeps serving meanwhile, and RebuildCheckpoint shows the next
	// version's progress).
	State             string     `json:"state"`
	RebuildCheckpoint string     `json:"rebuild_checkpoint,omitempty"`
	Checkpoint        string     `json:"checkpoint"`
	CheckpointAt      *time.Time `json:"checkpoint_at,omitempty"`
	Head              string     `json:"head"`
	// LagEvents counts the events of the projection's types after its
	// checkpoint; LagSeconds is the age of the oldest of them.
	LagEvents  int64    `json:"lag_events"`
	LagSeconds float64  `json:"lag_seconds"`
	EventTypes []string `json:"event_types,omitempty"`
	// Handled counts the events the reporting runner handled since it
	// started; Parked the parked events the sink knows of.
	Handled    int64      `json:"handled"`
	Parked     int64      `json:"parked_events"`
	LastError  string     `json:"last_error,omitempty"`
	ErrorAt    *time.Time `json:"last_error_at,omitempty"`
	Owner      string     `json:"owner,omitempty"`
	ReportedAt *time.Time `json:"reported_at,omitempty"`
}
