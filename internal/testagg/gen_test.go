package testagg

import (
	"flag"
	"testing"

	"github.com/esgen-dev/esgen/internal/gentest"
)

var update = flag.Bool("update", false, "rewrite the generated files")

func TestGeneratedFilesAreCurrent(t *testing.T) {
	gentest.Check(t, "proto", "v1", "module=github.com/esgen-dev/esgen/internal/testagg/v1", *update, "run go test ./internal/testagg -update")
}
