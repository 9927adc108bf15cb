package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/esgen-dev/esgen/codegen"
)

// TestMain lets the test binary act as the plugin, so that the tests run
// the real main over stdin and stdout.
func TestMain(m *testing.M) {
	if os.Getenv("ESGEN_TEST_RUN_PLUGIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runPlugin sends req to the plugin and returns its response.
func runPlugin(t *testing.T, req *pluginpb.CodeGeneratorRequest) *pluginpb.CodeGeneratorResponse {
	t.Helper()
	in, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ESGEN_TEST_RUN_PLUGIN=1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plugin: %v\n%s", err, stderr.String())
	}
	resp := new(pluginpb.CodeGeneratorResponse)
	if err := proto.Unmarshal(out, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// sampleFiles lists the .proto files of codegen's sample, as import paths.
func sampleFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestPlugin_SameBytesAsGenerate(t *testing.T) {
	root := filepath.Join("..", "..", "codegen", "testdata", "sample", "proto")
	for _, param := range []string{"module=example.com/sample", "paths=source_relative"} {
		req, err := codegen.Compile(context.Background(), codegen.CompileConfig{ImportPaths: []string{root}, Files: sampleFiles(t, root), Parameter: param})
		if err != nil {
			t.Fatal(err)
		}
		want, err := codegen.Generate(req, codegen.GenerateOptions{ProtocGenGo: true})
		if err != nil {
			t.Fatal(err)
		}
		wantESGen := make(map[string]string)
		for _, f := range want {
			if strings.HasSuffix(f.GetName(), ".esgen.go") {
				wantESGen[f.GetName()] = f.GetContent()
			}
		}
		// protoc sets its version; esgen's output must not depend on it.
		req.CompilerVersion = &pluginpb.Version{Major: proto.Int32(29), Minor: proto.Int32(3), Patch: proto.Int32(0)}
		resp := runPlugin(t, req)
		if resp.Error != nil {
			t.Fatalf("plugin error: %s", resp.GetError())
		}
		if len(resp.File) != len(wantESGen) || len(wantESGen) == 0 {
			t.Errorf("%s: plugin wrote %d files, esgen generate %d .esgen.go files", param, len(resp.File), len(wantESGen))
		}
		for _, f := range resp.File {
			if w, ok := wantESGen[f.GetName()]; !ok {
				t.Errorf("%s: plugin wrote %s, which esgen generate does not", param, f.GetName())
			} else if w != f.GetContent() {
				t.Errorf("%s: %s differs between the plugin and esgen generate", param, f.GetName())
			}
		}
		if resp.GetSupportedFeatures()&uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL) == 0 {
			t.Error("the plugin does not declare proto3 optional support")
		}
	}
}

func TestPlugin_ReportsProblemsWithPositions(t *testing.T) {
	dir := t.TempDir()
	src := `syntax = "proto3";
package bank.v1;
import "esgen/v1/options.proto";
option go_package = "example.com/bank/v1;bankv1";
message OpenAccount {
  option (esgen.v1.command) = { aggregate: "Account" };
  string account_id = 1;
}
`
	if err := os.MkdirAll(filepath.Join(dir, "bank", "v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bank", "v1", "bank.proto"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{ImportPaths: []string{dir}, Files: []string{"bank/v1/bank.proto"}})
	if err != nil {
		t.Fatal(err)
	}
	resp := runPlugin(t, req)
	want := `bank/v1/bank.proto:6:33: command bank.v1.OpenAccount names aggregate "Account", but no message of that name is visible from package bank.v1; name a message that has option (esgen.v1.aggregate)`
	if resp.GetError() != want {
		t.Errorf("error = %q\nwant    %q", resp.GetError(), want)
	}
	if len(resp.File) != 0 {
		t.Errorf("the plugin wrote %d files despite the error", len(resp.File))
	}
}

// TestPlugin_SameBytesAsTheCLI builds the esgen CLI, runs esgen generate on
// codegen's sample, and checks that the plugin writes the same .esgen.go
// bytes for the same files.
func TestPlugin_SameBytesAsTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the esgen CLI; skipped with -short")
	}
	work := t.TempDir()
	esgen := filepath.Join(work, "esgen")
	build := exec.Command("go", "build", "-o", esgen, "../esgen")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../esgen: %v\n%s", err, out)
	}
	src := filepath.Join("..", "..", "codegen", "testdata", "sample", "proto")
	proj := filepath.Join(work, "proj")
	files := sampleFiles(t, src)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(proj, "proto", filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cli := exec.Command(esgen, "generate", "--out", "gen", "--paths", "source_relative")
	cli.Dir = proj
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("esgen generate: %v\n%s", err, out)
	}
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{
		ImportPaths: []string{filepath.Join(proj, "proto")},
		Files:       files,
		Parameter:   "paths=source_relative",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := runPlugin(t, req)
	if resp.Error != nil || len(resp.File) == 0 {
		t.Fatalf("plugin: %q, %d files", resp.GetError(), len(resp.File))
	}
	for _, f := range resp.File {
		got, err := os.ReadFile(filepath.Join(proj, "gen", filepath.FromSlash(f.GetName())))
		if err != nil {
			t.Errorf("esgen generate did not write %s: %v", f.GetName(), err)
			continue
		}
		if string(got) != f.GetContent() {
			t.Errorf("%s differs between esgen generate and the plugin", f.GetName())
		}
	}
}
