package codegen

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/pluginpb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// protoFiles lists the .proto files under root, as import paths.
func protoFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// sampleRequest compiles the multi-package sample under testdata/sample.
func sampleRequest(t *testing.T, parameter string) *pluginpb.CodeGeneratorRequest {
	t.Helper()
	root := filepath.Join("testdata", "sample", "proto")
	req, err := Compile(context.Background(), CompileConfig{
		ImportPaths: []string{root},
		Files:       protoFiles(t, root),
		Parameter:   parameter,
	})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// generateSample generates the sample's .pb.go and .esgen.go files, named
// relative to the root of its Go module, example.com/sample.
func generateSample(t *testing.T) []*pluginpb.CodeGeneratorResponse_File {
	t.Helper()
	files, err := Generate(sampleRequest(t, "module=example.com/sample"), GenerateOptions{ProtocGenGo: true})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkGolden compares got with the file at path, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated output (run go test -update after checking the change):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return "(no line differs)"
}

func TestGenerate_SampleMatchesGolden(t *testing.T) {
	files := generateSample(t)
	var names []string
	for _, f := range files {
		names = append(names, f.GetName())
		checkGolden(t, filepath.Join("testdata", "sample", "golden", filepath.FromSlash(f.GetName())), []byte(f.GetContent()))
	}
	// No stale golden file may linger.
	if !*update {
		root := filepath.Join("testdata", "sample", "golden")
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				if !slices.Contains(names, filepath.ToSlash(rel)) {
					t.Errorf("golden file %s is no longer generated", path)
				}
			}
			return nil
		})
	}
}
