package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/esgen-dev/esgen/codegen"
)

func newCheckCmd() *cobra.Command {
	var (
		src     sourceFlags
		against string
	)
	cmd := &cobra.Command{
		Use:   "check --against REF_OR_DIR [paths...]",
		Short: "Fail on schema changes that would break reading stored events",
		Long: `Check compares the event and aggregate-state schemas of the .proto files
with a previous version, a git ref (branch, tag, commit) or a folder that
holds a copy of the project, and fails on changes that would break reading
what is already stored:

  - an event type removed, renamed, or moved to another package
  - a field number reused with another type
  - a field moved between singular, repeated and map
  - an event moved to another aggregate, an aggregate removed or renamed
  - an aggregate's stream category changed

Additive changes pass: new fields, events and aggregates, renamed fields,
deprecated events. A removed field whose number is not reserved is a
warning. Paths and -I select the files as for esgen generate; the previous
version is read with the same paths, relative to its root.`,
		Example: `  # In CI: compare with the main branch
  esgen check --against origin/main

  # Compare with the last release tag, or with a folder
  esgen check --against v1.4.0
  esgen check --against ../bank-v1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if against == "" {
				return usagef("--against is required: name a git ref or a folder with the previous version")
			}
			return runCheck(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), src, against, args)
		},
	}
	src.register(cmd.Flags())
	cmd.Flags().StringVar(&against, "against", "", "previous version: a git ref, or a folder with a copy of the project (required)")
	return cmd
}

func runCheck(ctx context.Context, stdout, stderr io.Writer, src sourceFlags, against string, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := loadProject(".")
	if err != nil {
		return err
	}
	cur, err := resolveSources(p, src, args)
	if err != nil {
		return err
	}
	curReq, err := codegen.Compile(ctx, codegen.CompileConfig{ImportPaths: cur.importPaths, Files: cur.files})
	if err != nil {
		return reportDiagnostics(stderr, "esgen check", p, cur, err, "nothing was compared")
	}

	// The previous version: a folder, or a git ref extracted to one.
	prevRoot, label := against, against
	if st, err := os.Stat(against); err != nil || !st.IsDir() {
		tmp, err := os.MkdirTemp("", "esgen-check-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if prevRoot, err = extractGitRef(ctx, against, tmp); err != nil {
			return err
		}
		label = against + ":"
	} else {
		label = strings.TrimSuffix(against, string(filepath.Separator)) + string(filepath.Separator)
	}
	prev, err := previousSources(p, cur, prevRoot, args)
	if err != nil {
		return err
	}
	prevProject := &project{dir: prevRoot}
	prevReq, err := codegen.Compile(ctx, codegen.CompileConfig{ImportPaths: prev.importPaths, Files: prev.files})
	if err != nil {
		var ce *codegen.Error
		if errors.As(err, &ce) {
			for _, d := range ce.Diagnostics {
				d.File = label + filepath.ToSlash(prev.diskPath(prevProject, d.File))
				fmt.Fprintln(stderr, d.String())
			}
			fmt.Fprintf(stderr, "esgen check: the version in %s does not compile; nothing was compared\n", against)
			return silentError{}
		}
		return err
	}
	rep, err := codegen.CheckCompatibility(prevReq, curReq)
	if err != nil {
		return err
	}
	show := func(pr codegen.CompatProblem, prefix string) {
		d := pr.Diagnostic
		if pr.Previous {
			d.File = label + filepath.ToSlash(prev.diskPath(prevProject, d.File))
		} else {
			d.File = cur.diskPath(p, d.File)
		}
		d.Message = prefix + d.Message
		fmt.Fprintln(stderr, d.String())
	}
	for _, pr := range rep.Breaking {
		show(pr, "")
	}
	for _, pr := range rep.Warnings {
		show(pr, "warning: ")
	}
	if n := len(rep.Breaking); n > 0 {
		fmt.Fprintf(stderr, "esgen check: %d breaking %s against %s\n", n, plural(n, "change", "changes"), against)
		return silentError{}
	}
	fmt.Fprintf(stdout, "esgen check: no breaking changes against %s (%d %s, %d %s compared)\n", against,
		rep.Events, plural(rep.Events, "event", "events"), rep.Aggregates, plural(rep.Aggregates, "aggregate", "aggregates"))
	return nil
}

// previousSources maps the current import paths and arguments into the
// previous version's root. A folder that holds the .proto files directly
// (no such import path inside) is its own import path.
func previousSources(p *project, cur *sources, prevRoot string, args []string) (*sources, error) {
	prevProject, err := loadProject(prevRoot)
	if err != nil {
		return nil, err
	}
	var rel []string
	for _, ip := range cur.importPaths {
		r, err := filepath.Rel(p.dir, ip)
		if err != nil {
			return nil, err
		}
		rel = append(rel, r)
	}
	flags := sourceFlags{importPaths: rel}
	missing := false
	for _, r := range rel {
		if st, err := os.Stat(filepath.Join(prevRoot, r)); err != nil || !st.IsDir() {
			missing = true
		}
	}
	if missing {
		flags.importPaths = []string{"."}
		args = nil
	}
	s, err := resolveSources(prevProject, flags, args)
	if err != nil {
		return nil, fmt.Errorf("previous version in %s: %w", prevRoot, err)
	}
	return s, nil
}

// extractGitRef writes the tree of ref into dir and returns the folder in
// it that matches the current folder of the repository.
func extractGitRef(ctx context.Context, ref, dir string) (string, error) {
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return out, nil
	}
	if _, err := git("rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
		return "", usagef("--against %s: not a folder, and not a git commit, branch or tag of this repository", ref)
	}
	prefix, err := git("rev-parse", "--show-prefix")
	if err != nil {
		return "", err
	}
	archive, err := git("archive", "--format=tar", ref)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read git archive of %s: %w", ref, err)
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			continue
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return "", err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return "", err
			}
			if err := os.WriteFile(target, b, 0o644); err != nil {
				return "", err
			}
		}
	}
	return filepath.Join(dir, filepath.FromSlash(strings.TrimSpace(string(prefix)))), nil
}
