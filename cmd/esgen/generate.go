package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/esgen-dev/esgen/codegen"
)

func newGenerateCmd() *cobra.Command {
	var (
		src   sourceFlags
		out   outputFlags
		check bool
	)
	cmd := &cobra.Command{
		Use:   "generate [paths...]",
		Short: "Generate .pb.go and .esgen.go files from .proto files",
		Long: `Generate compiles .proto files in-process (no protoc, no plugins) and writes
the standard .pb.go files and, for files that declare esgen aggregates,
commands, events, projections or process managers, the .esgen.go files.

Paths are .proto files or folders, inside an import path (-I). Without
paths, every .proto file of the import paths is generated. Without -I, the
import paths are the modules of buf.yaml, else ./proto if it exists, else
the current folder. The output folder and layout follow the Go plugin of
buf.gen.yaml when there is one.

Problems are reported as file:line:col and nothing is written. An .esgen.go
file whose .proto no longer declares anything for esgen is removed.

With --check, nothing is written: the files that are missing, differ or
should be removed are listed, and the exit code is 1 if there are any.`,
		Example: `  # Generate every .proto file under ./proto
  esgen generate

  # Generate one folder, writing beside the .proto paths under gen/
  esgen generate -I proto --out gen --paths source_relative proto/bank/v1

  # In CI: fail when generated files are stale
  esgen generate --check`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGenerate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), src, out, check, args)
		},
	}
	src.register(cmd.Flags())
	out.register(cmd.Flags())
	cmd.Flags().BoolVar(&check, "check", false, "write nothing; list stale generated files and exit 1 if there are any")
	return cmd
}

// plannedFile is one output of a generate run.
type plannedFile struct {
	path    string // relative to the project folder
	content []byte // nil: remove the file
	state   string // "new", "changed", "unchanged" or "orphaned"
}

func runGenerate(ctx context.Context, stdout, stderr io.Writer, src sourceFlags, outFlags outputFlags, check bool, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := loadProject(".")
	if err != nil {
		return err
	}
	for _, n := range p.notes {
		fmt.Fprintf(stderr, "esgen generate: warning: %s\n", n)
	}
	o, err := resolveOutput(p, outFlags)
	if err != nil {
		return err
	}
	s, err := resolveSources(p, src, args)
	if err != nil {
		return err
	}
	files, err := generateFiles(ctx, s, o)
	if err != nil {
		return reportDiagnostics(stderr, "esgen generate", p, s, err, "nothing was written")
	}
	plan, err := planOutput(o, s, files)
	if err != nil {
		return err
	}
	if check {
		stale := 0
		for _, f := range plan {
			if f.state != "unchanged" {
				stale++
				fmt.Fprintf(stdout, "%s: %s\n", f.path, describeStale(f.state))
			}
		}
		if stale > 0 {
			fmt.Fprintf(stderr, "esgen generate --check: %d generated %s out of date; run esgen generate\n", stale, plural(stale, "file is", "files are"))
			return silentError{}
		}
		return nil
	}
	for _, f := range plan {
		switch f.state {
		case "unchanged":
			continue
		case "orphaned":
			if err := os.Remove(f.path); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed %s\n", f.path)
		default:
			if err := writeFileAtomic(f.path, f.content); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\n", f.path)
		}
	}
	return nil
}

func describeStale(state string) string {
	switch state {
	case "new":
		return "missing"
	case "changed":
		return "differs from the generated code"
	}
	return "generated from a .proto that no longer exists or declares nothing; esgen generate removes it"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// generateFiles compiles the sources and runs the generator.
func generateFiles(ctx context.Context, s *sources, o *output) ([]generated, error) {
	req, err := codegen.Compile(ctx, codegen.CompileConfig{ImportPaths: s.importPaths, Files: s.files, Parameter: o.parameter})
	if err != nil {
		return nil, err
	}
	files, err := codegen.Generate(req, codegen.GenerateOptions{ProtocGenGo: true})
	if err != nil {
		if strings.Contains(err.Error(), "does not match prefix") {
			err = fmt.Errorf("%w: the go_package of every file must start with the --module prefix (%s); set --module to the import path of the output folder, or use --paths source_relative", err, o.parameter)
		}
		return nil, err
	}
	out := make([]generated, 0, len(files))
	for _, f := range files {
		out = append(out, generated{name: f.GetName(), content: []byte(f.GetContent())})
	}
	slices.SortFunc(out, func(a, b generated) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

type generated struct {
	name    string
	content []byte
}

// planOutput compares the generated files with the output folder.
func planOutput(o *output, s *sources, files []generated) ([]plannedFile, error) {
	var plan []plannedFile
	names := make(map[string]bool, len(files))
	for _, f := range files {
		names[f.name] = true
	}
	for _, f := range files {
		path := filepath.Join(o.dir, filepath.FromSlash(f.name))
		pf := plannedFile{path: path, content: f.content, state: "new"}
		old, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.Equal(old, f.content):
			pf.state = "unchanged"
		case err == nil:
			pf.state = "changed"
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		plan = append(plan, pf)
		// The .esgen.go of a file that no longer declares anything.
		if base, ok := strings.CutSuffix(f.name, ".pb.go"); ok && !names[base+".esgen.go"] {
			orphan := filepath.Join(o.dir, filepath.FromSlash(base+".esgen.go"))
			if b, err := os.ReadFile(orphan); err == nil && bytes.HasPrefix(b, []byte("// Code generated by esgen. DO NOT EDIT.")) {
				plan = append(plan, plannedFile{path: orphan, state: "orphaned"})
			}
		}
	}
	orphans, err := orphanedFiles(o, s, names)
	if err != nil {
		return nil, err
	}
	for _, path := range orphans {
		if !slices.ContainsFunc(plan, func(pf plannedFile) bool { return pf.path == path }) {
			plan = append(plan, plannedFile{path: path, state: "orphaned"})
		}
	}
	return plan, nil
}

// Headers of the files esgen generate writes, and the line that names the
// .proto file each was generated from.
var (
	generatedHeaders = [][]byte{
		[]byte("// Code generated by esgen. DO NOT EDIT."),
		[]byte("// Code generated by protoc-gen-go. DO NOT EDIT."),
	}
	sourceLine = regexp.MustCompile(`(?m)^// source: (\S+\.proto)$`)
)

// orphanedFiles finds generated files in the output folder whose .proto
// file no longer exists in any import path: left over after a .proto was
// deleted or moved. Files generated from .proto files that still exist, but
// are not part of this run, are left alone.
func orphanedFiles(o *output, s *sources, generatedNow map[string]bool) ([]string, error) {
	var orphans []string
	err := filepath.WalkDir(o.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // no output folder yet
			}
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".esgen.go") || strings.HasSuffix(path, ".pb.go")) {
			return nil
		}
		if rel, err := filepath.Rel(o.dir, path); err == nil && generatedNow[filepath.ToSlash(rel)] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(generatedHeaders, func(h []byte) bool { return bytes.HasPrefix(b, h) }) {
			return nil // not ours
		}
		m := sourceLine.FindSubmatch(b[:min(len(b), 2048)])
		if m == nil {
			return nil
		}
		for _, ip := range s.importPaths {
			if _, err := os.Stat(filepath.Join(ip, filepath.FromSlash(string(m[1])))); err == nil {
				return nil // its .proto still exists
			}
		}
		orphans = append(orphans, path)
		return nil
	})
	return orphans, err
}

// writeFileAtomic writes content to path through a temporary file, so that
// an interrupted run leaves either the old file or the new one.
func writeFileAtomic(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".esgen-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// reportDiagnostics prints a codegen error, one problem per line with the
// file's path on disk, and returns silentError; other errors are returned.
func reportDiagnostics(stderr io.Writer, who string, p *project, s *sources, err error, consequence string) error {
	var ce *codegen.Error
	if !errors.As(err, &ce) {
		return err
	}
	for _, d := range ce.Diagnostics {
		if d.File != "" {
			d.File = s.diskPath(p, d.File)
		}
		fmt.Fprintln(stderr, d.String())
	}
	n := len(ce.Diagnostics)
	fmt.Fprintf(stderr, "%s: %d %s; %s\n", who, n, plural(n, "problem", "problems"), consequence)
	return silentError{}
}
