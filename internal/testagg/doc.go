// Package testagg holds the aggregate that the runtime's own tests drive
// (package testaggv1, generated from proto/testagg/v1/account.proto) and its
// hand-written Decider and Evolver. Regenerate with
//
//	go test ./internal/testagg -update
//
// The test fails when the checked-in generated files are stale.
package testagg
