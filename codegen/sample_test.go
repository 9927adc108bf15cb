package codegen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerate_SampleCompilesAndRuns writes the generated sample into a
// throwaway module that points at this checkout of esgen, and runs the
// hand-written tests in testdata/sample/app against it: the generated code
// must build, pass go vet and gofmt, and behave.
func TestGenerate_SampleCompilesAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go module; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range generateSample(t) {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(f.GetName())), f.GetContent())
	}
	writeFile(t, filepath.Join(dir, "go.mod"), sampleGoMod("example.com/sample", root))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), string(sum))
	app, err := os.ReadFile(filepath.Join("testdata", "sample", "app", "sample_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sample_test.go"), string(app))

	run := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("gofmt", "-l", "gen"); err != nil || out != "" {
		t.Errorf("gofmt -l gen: %v\n%s", err, out)
	}
	if out, err := run(goTool, "vet", "./..."); err != nil {
		t.Fatalf("go vet ./...: %v\n%s", err, out)
	}
	if out, err := run(goTool, "test", "-count=1", "./..."); err != nil {
		t.Fatalf("go test ./...: %v\n%s", err, out)
	} else {
		t.Logf("go test ./...:\n%s", out)
	}

	// An Evolver that misses an event, or a command of another aggregate,
	// does not compile.
	bad, err := os.ReadFile(filepath.Join("testdata", "sample", "app", "unhandled", "unhandled.go"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "unhandled", "unhandled.go"), string(bad))
	out, err := run(goTool, "build", "./unhandled")
	if err == nil {
		t.Fatal("a package with an unhandled event compiled")
	}
	for _, want := range []string{"missing method EvolveFundsDeposited", "missing method isAccountCommand"} {
		if !strings.Contains(out, want) {
			t.Errorf("go build output lacks %q:\n%s", want, out)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sampleGoMod is the go.mod of a module that uses this checkout of esgen.
func sampleGoMod(module, esgenRoot string) string {
	return "module " + module + "\n\ngo 1.26.0\n\n" +
		"require (\n\tgithub.com/esgen-dev/esgen v0.0.0-00010101000000-000000000000\n\tgoogle.golang.org/protobuf v1.36.12\n)\n\n" +
		"replace github.com/esgen-dev/esgen => " + esgenRoot + "\n"
}
