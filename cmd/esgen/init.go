package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// esgenModule is the module path of esgen itself.
const esgenModule = "github.com/esgen-dev/esgen"

func newInitCmd() *cobra.Command {
	var module, esgenDir string
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Create a new Go module with a first aggregate",
		Long: `Init creates the folder NAME with a new Go module: a proto folder with a
first aggregate (Account), its hand-written behaviour in internal/account
with Given/When/Then tests, a main.go that runs it against the in-memory
event store, buf.yaml and buf.gen.yaml, and a Makefile.

Then run esgen generate in it, and go test ./... passes.

While esgen is not published, the new module uses a local checkout of
esgen through a replace directive: --esgen, else $ESGEN_DIR, else the
checkout this esgen binary was built from.`,
		Example: `  esgen init bank && cd bank && esgen generate && go test ./...

  # The module path may differ from the folder name
  esgen init bank --module github.com/acme/bank

  # A NAME with slashes is a module path; the folder is its last element
  esgen init github.com/acme/bank`,
		Args: exactArgs(1, "one argument, the name of the new module"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd.OutOrStdout(), args[0], module, esgenDir)
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "Go module path of the new module; default: NAME")
	cmd.Flags().StringVar(&esgenDir, "esgen", "", "local checkout of esgen for the replace directive; default: $ESGEN_DIR, else the checkout esgen was built from")
	return cmd
}

func runInit(stdout io.Writer, name, module, esgenDir string) error {
	if module == "" {
		module = name
	}
	if strings.ContainsAny(module, " \t\\") || strings.HasPrefix(module, "/") || strings.HasSuffix(module, "/") {
		return usagef("%q is not a valid Go module path", module)
	}
	dir := path.Base(name)
	if !identRE.MatchString(strings.NewReplacer("-", "", "_", "", ".", "").Replace(dir)) {
		return usagef("%q is not a usable folder name: use letters, digits, '-', '_' and '.'", dir)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s already exists and is not empty: choose another name or remove it", dir)
	}
	version, replace, err := esgenSource(esgenDir)
	if err != nil {
		return err
	}
	data := scaffold{
		Name:          dir,
		Module:        module,
		ESGenVersion:  version,
		Replace:       replace,
		ProtoPackage:  "account.v1",
		ProtoDir:      "account/v1",
		GoImportPath:  module + "/gen/account/v1",
		GoPackageName: "accountv1",
	}
	files := []struct{ tmpl, path string }{
		{"init/go.mod.tmpl", "go.mod"},
		{"init/buf.yaml.tmpl", "buf.yaml"},
		{"init/buf.gen.yaml.tmpl", "buf.gen.yaml"},
		{"init/Makefile.tmpl", "Makefile"},
		{"init/README.md.tmpl", "README.md"},
		{"init/account.proto.tmpl", "proto/account/v1/account.proto"},
		{"init/account.go.tmpl", "internal/account/account.go"},
		{"init/account_test.go.tmpl", "internal/account/account_test.go"},
		{"init/main.go.tmpl", "main.go"},
		{"init/main_test.go.tmpl", "main_test.go"},
	}
	for _, f := range files {
		content, err := render(f.tmpl, data)
		if err != nil {
			return err
		}
		if err := writeNew(stdout, filepath.Join(dir, filepath.FromSlash(f.path)), content); err != nil {
			return err
		}
	}
	if replace != "" {
		// The checkout's go.sum lists every module esgen needs, so the new
		// module builds from the module cache without a go mod tidy.
		if sum, err := os.ReadFile(filepath.Join(replace, "go.sum")); err == nil {
			if err := writeNew(stdout, filepath.Join(dir, "go.sum"), sum); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "\nCreated module %s in %s. Next:\n\n\tcd %s\n\tesgen generate\n\tgo test ./...\n\tgo run .\n", module, dir, dir)
	return nil
}

// esgenSource decides how the new module requires esgen: a published
// version, or a local checkout through a replace directive.
func esgenSource(flagDir string) (version, replace string, err error) {
	const unpublished = "v0.0.0-00010101000000-000000000000"
	dir := flagDir
	if dir == "" {
		dir = os.Getenv("ESGEN_DIR")
	}
	if dir == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == esgenModule && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version, "", nil
		}
		dir = builtFrom()
	}
	if dir == "" {
		return "", "", usagef("esgen is not published yet: point --esgen (or $ESGEN_DIR) at a checkout of %s", esgenModule)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	if got := modulePath(filepath.Join(abs, "go.mod")); got != esgenModule {
		return "", "", usagef("%s is not a checkout of %s (its go.mod says %q)", abs, esgenModule, got)
	}
	return unpublished, abs, nil
}

// builtFrom returns the root of the esgen checkout this binary was compiled
// from, if it is still there.
func builtFrom() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	for d := filepath.Dir(file); filepath.Dir(d) != d; d = filepath.Dir(d) {
		if modulePath(filepath.Join(d, "go.mod")) == esgenModule {
			return d
		}
	}
	return ""
}
