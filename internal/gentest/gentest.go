// Package gentest checks that generated code checked into a folder is what
// the generator makes now, so that a stale file fails a test instead of
// drifting. The generated packages of this repository use it from their
// golden tests.
package gentest

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/esgen-dev/esgen/codegen"
)

// Check compiles every .proto file under protoDir (the import path), runs
// the generator with parameter (as protoc's --go_opt would pass it), and
// compares the result with the files under outDir: a stale, missing or
// left-over file fails t, with hint saying how to regenerate. With update,
// it rewrites outDir instead.
func Check(t *testing.T, protoDir, outDir, parameter string, update bool, hint string) {
	t.Helper()
	var protos []string
	err := filepath.WalkDir(protoDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, _ := filepath.Rel(protoDir, path)
			protos = append(protos, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{
		ImportPaths: []string{protoDir},
		Files:       protos,
		Parameter:   parameter,
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := codegen.Generate(req, codegen.GenerateOptions{ProtocGenGo: true})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		path := filepath.Join(outDir, filepath.FromSlash(f.GetName()))
		want = append(want, path)
		if update {
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
			t.Errorf("%v: %s", err, hint)
			continue
		}
		if !bytes.Equal(have, []byte(f.GetContent())) {
			t.Errorf("%s is stale: %s", path, hint)
		}
	}
	err = filepath.WalkDir(outDir, func(path string, d fs.DirEntry, err error) error {
		generated := strings.HasSuffix(path, ".pb.go") || strings.HasSuffix(path, ".esgen.go")
		if err == nil && !d.IsDir() && generated && !slices.Contains(want, path) {
			t.Errorf("%s is not generated from %s any more: delete it", path, protoDir)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
