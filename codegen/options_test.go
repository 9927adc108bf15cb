package codegen

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestOptionsPbGo_UpToDate regenerates proto/esgen/v1/options.pb.go, the Go
// code of the esgen annotations, with this package (-update rewrites it).
func TestOptionsPbGo_UpToDate(t *testing.T) {
	root := filepath.Join("..", "proto")
	req, err := Compile(context.Background(), CompileConfig{
		ImportPaths: []string{root},
		Files:       []string{OptionsFile},
		Parameter:   "paths=source_relative",
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(req, GenerateOptions{ProtocGenGo: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].GetName() != "esgen/v1/options.pb.go" {
		t.Fatalf("generated %d files, want only esgen/v1/options.pb.go", len(files))
	}
	checkGolden(t, filepath.Join(root, "esgen", "v1", "options.pb.go"), []byte(files[0].GetContent()))
}

// TestGenerate_SameBytesWhateverTheFileOrder generates the sample from files
// listed in two orders and checks that every byte is the same.
func TestGenerate_SameBytesWhateverTheFileOrder(t *testing.T) {
	root := filepath.Join("testdata", "sample", "proto")
	files := protoFiles(t, root)
	gen := func(order []string) map[string]string {
		req, err := Compile(context.Background(), CompileConfig{ImportPaths: []string{root}, Files: order, Parameter: "module=example.com/sample"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := Generate(req, GenerateOptions{ProtocGenGo: true})
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]string)
		for _, f := range out {
			m[f.GetName()] = f.GetContent()
		}
		return m
	}
	a := gen(files)
	reversed := slices.Clone(files)
	slices.Reverse(reversed)
	b := gen(reversed)
	if len(a) != len(b) {
		t.Fatalf("%d files in one order, %d in the other", len(a), len(b))
	}
	for name, content := range a {
		if b[name] != content {
			t.Errorf("%s differs with the file order reversed:\n%s", name, lineDiff(content, b[name]))
		}
	}
}
