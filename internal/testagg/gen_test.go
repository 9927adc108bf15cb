package testagg

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/esgen-dev/esgen/codegen"
)

var update = flag.Bool("update", false, "rewrite the generated files")

func TestGeneratedFilesAreCurrent(t *testing.T) {
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{
		ImportPaths: []string{"proto"},
		Files:       []string{"testagg/v1/account.proto"},
		Parameter:   "module=github.com/esgen-dev/esgen/internal/testagg",
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := codegen.Generate(req, codegen.GenerateOptions{ProtocGenGo: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("generated %d files, want account.pb.go and account.esgen.go", len(files))
	}
	for _, f := range files {
		path := filepath.FromSlash(f.GetName())
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(f.GetContent()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run go test ./internal/testagg -update", err)
		}
		if !bytes.Equal(have, []byte(f.GetContent())) {
			t.Errorf("%s is stale: run go test ./internal/testagg -update", path)
		}
	}
}
