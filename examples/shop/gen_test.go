package main

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/esgen-dev/esgen/codegen"
)

var update = flag.Bool("update", false, "rewrite gen/ and the golden session output")

// TestGeneratedFilesAreCurrent regenerates gen/ from proto/ as
// `esgen generate` does (buf.gen.yaml: out gen, paths=source_relative) and
// fails when a checked-in file is stale, missing or left over.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	var protos []string
	err := filepath.WalkDir("proto", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, _ := filepath.Rel("proto", path)
			protos = append(protos, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{
		ImportPaths: []string{"proto"},
		Files:       protos,
		Parameter:   "paths=source_relative",
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
		path := filepath.Join("gen", filepath.FromSlash(f.GetName()))
		want = append(want, path)
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
			t.Errorf("%v: run go test ./examples/shop -run Generated -update", err)
			continue
		}
		if !bytes.Equal(have, []byte(f.GetContent())) {
			t.Errorf("%s is stale: run go test ./examples/shop -run Generated -update", path)
		}
	}
	err = filepath.WalkDir("gen", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !slices.Contains(want, path) {
			t.Errorf("%s is not generated from proto/ any more: delete it", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
