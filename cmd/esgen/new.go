package main

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func newNewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Add declarations and their hand-written stubs to a module",
		Example: `  esgen new aggregate Order
  esgen new aggregate Order --package shop.order.v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNewAggregateCmd())
	return cmd
}

func newNewAggregateCmd() *cobra.Command {
	var pkg string
	cmd := &cobra.Command{
		Use:   "aggregate NAME",
		Short: "Add an aggregate: its .proto and the stubs of its Decider and Evolver",
		Long: `Aggregate adds the .proto of a new aggregate NAME (its state, a creating
command and an event) under the proto folder, and the hand-written stubs
of its Decider and Evolver under internal/, which return a "not
implemented" error until you write them.

Files that exist are never overwritten: running it twice changes nothing.
Run esgen generate next.`,
		Example: `  esgen new aggregate Order
  esgen new aggregate Order --package shop.order.v1`,
		Args: exactArgs(1, "one argument, the aggregate's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNewAggregate(cmd.OutOrStdout(), args[0], pkg)
		},
	}
	cmd.Flags().StringVar(&pkg, "package", "", `protobuf package of the aggregate, such as "shop.order.v1"; default: the lower-case NAME + ".v1"`)
	return cmd
}

func runNewAggregate(stdout io.Writer, name, pkg string) error {
	if !identRE.MatchString(name) {
		return usagef("aggregate name %q must be a protobuf message name: letters and digits, starting with a letter", name)
	}
	name = strings.ToUpper(name[:1]) + name[1:]
	if pkg == "" {
		pkg = strings.ToLower(name) + ".v1"
	}
	if !protoPackageRE.MatchString(pkg) {
		return usagef("--package %q is not a protobuf package: lower-case words separated by dots, such as shop.order.v1", pkg)
	}
	module := modulePath("go.mod")
	if module == "" {
		return usagef("no go.mod here: run esgen new aggregate in the root folder of a Go module (esgen init makes one)")
	}
	p, err := loadProject(".")
	if err != nil {
		return err
	}
	protoRoot := "proto"
	if len(p.bufModules) > 0 {
		protoRoot = p.bufModules[0]
	}
	o, err := resolveOutput(p, outputFlags{})
	if err != nil {
		return err
	}
	protoDir := strings.ReplaceAll(pkg, ".", "/")
	goImport := path.Join(module, "gen", protoDir)
	if strings.Contains(o.parameter, "paths=source_relative") {
		if base := moduleOf(o.dir); base != "" {
			goImport = path.Join(base, protoDir)
		}
	}
	goDir := strings.ToLower(name)
	data := scaffold{
		Name:          name,
		Module:        module,
		ProtoPackage:  pkg,
		ProtoDir:      protoDir,
		ProtoFile:     path.Join(filepath.ToSlash(protoRoot), protoDir, snake(name)+".proto"),
		GoImportPath:  goImport,
		GoPackageName: goPackageName(pkg),
		IDField:       snake(name) + "_id",
		GoDir:         goDir,
		StubDir:       "internal/" + goDir,
	}
	files := []struct{ tmpl, path string }{
		{"aggregate/aggregate.proto.tmpl", data.ProtoFile},
		{"aggregate/decider.go.tmpl", path.Join(data.StubDir, "decider.go")},
		{"aggregate/evolver.go.tmpl", path.Join(data.StubDir, "evolver.go")},
	}
	for _, f := range files {
		content, err := render(f.tmpl, data)
		if err != nil {
			return err
		}
		if err := writeNew(stdout, filepath.FromSlash(f.path), content); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nNext: esgen generate, then write the %s aggregate's behaviour in %s.\n", name, data.StubDir)
	return nil
}
