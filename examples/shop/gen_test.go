package main

import (
	"flag"
	"testing"

	"github.com/esgen-dev/esgen/internal/gentest"
)

var update = flag.Bool("update", false, "rewrite gen/ and the golden session output")

// TestGeneratedFilesAreCurrent regenerates gen/ from proto/ as
// `esgen generate` does (buf.gen.yaml: out gen, paths=source_relative) and
// fails when a checked-in file is stale, missing or left over.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	gentest.Check(t, "proto", "gen", "paths=source_relative", *update, "run go test ./examples/shop -run Generated -update")
}
