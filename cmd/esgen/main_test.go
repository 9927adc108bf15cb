package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/esgen-dev/esgen/internal/pgtest"
)

// withPostgres runs the tests with the pgtest harness, which starts a
// throwaway Postgres for the tests that need one and stops it afterwards.
type withPostgres struct{ m *testing.M }

func (w withPostgres) Run() int { return pgtest.Run(w.m) }

func TestMain(m *testing.M) {
	testscript.Main(withPostgres{m}, map[string]func(){
		"esgen": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// goEnvVars are passed from the test process to the scripts, so that the go
// commands they run use the real module and build caches.
var goEnvVars = []string{"GOCACHE", "GOMODCACHE", "GOPROXY", "GOFLAGS", "GOPATH", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOTOOLCHAIN", "GOTMPDIR"}

func goEnv(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"env", "-json"}, goEnvVars...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	env := make(map[string]string)
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestScripts runs the CLI flows in testdata/script: init → generate → go
// test, new aggregate twice, check on breaking and additive changes, and
// each bad input.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("the scripts build Go modules; skipped with -short")
	}
	env := goEnv(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			for k, v := range env {
				if v != "" {
					e.Setenv(k, v)
				}
			}
			e.Setenv("GOWORK", "off")
			e.Setenv("ESGEN_DIR", root)
			e.Setenv("GIT_AUTHOR_NAME", "esgen test")
			e.Setenv("GIT_AUTHOR_EMAIL", "test@esgen.invalid")
			e.Setenv("GIT_COMMITTER_NAME", "esgen test")
			e.Setenv("GIT_COMMITTER_EMAIL", "test@esgen.invalid")
			e.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "git" {
				_, err := exec.LookPath("git")
				return err == nil, nil
			}
			return false, nil
		},
	})
}

// TestRun_ExitCodes checks the exit codes: 0 ok, 1 failed, 2 usage error.
func TestRun_ExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--help"}, exitOK, ""},
		{[]string{"--version"}, exitOK, ""},
		{[]string{"generate", "--help"}, exitOK, ""},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"generate", "--no-such-flag"}, exitUsage, "unknown flag: --no-such-flag"},
		{[]string{"generate", "--paths", "sideways", "-I", "."}, exitUsage, `--paths must be "import" or "source_relative"`},
		{[]string{"init"}, exitUsage, "want one argument"},
		{[]string{"new", "aggregate", "not-a-name"}, exitUsage, "must be a protobuf message name"},
		{[]string{"new", "aggregate", "Order", "--package", "Shop.Order"}, exitUsage, "is not a protobuf package"},
		{[]string{"check"}, exitUsage, "--against is required"},
		{[]string{"generate", "-I", "no-such-folder"}, exitUsage, "is not a folder"},
		{[]string{"generate", "-I", t.TempDir()}, exitFailed, "no .proto files found"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("esgen %s: exit code %d, want %d (stderr: %s)", strings.Join(tc.args, " "), code, tc.code, stderr.String())
		}
		if tc.err != "" && !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("esgen %s: stderr %q lacks %q", strings.Join(tc.args, " "), stderr.String(), tc.err)
		}
		if tc.code == exitUsage && !strings.Contains(stderr.String(), "--help") {
			t.Errorf("esgen %s: a usage error should point at --help: %q", strings.Join(tc.args, " "), stderr.String())
		}
	}
}

// TestHelp_EveryCommandHasAnExample checks the CLI convention that every
// command's help shows an example.
func TestHelp_EveryCommandHasAnExample(t *testing.T) {
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("esgen %s has no example", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				t.Errorf("esgen %s %s has no example", c.Name(), sub.Name())
			}
		}
	}
}
