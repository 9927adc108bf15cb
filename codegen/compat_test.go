package codegen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"google.golang.org/protobuf/types/pluginpb"
)

// TestCheckCompatibility_MatchesGolden runs each testdata/compat/*.txtar:
// the files under old/ are the previous schema, those under new/ the
// current one, and the report must be the archive's "want" file
// (rewritten with -update).
func TestCheckCompatibility_MatchesGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "compat", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					wantIdx = i
					continue
				}
				writeFile(t, filepath.Join(dir, f.Name), string(f.Data))
			}
			compile := func(side string) *pluginpb.CodeGeneratorRequest {
				root := filepath.Join(dir, side)
				req, err := Compile(context.Background(), CompileConfig{ImportPaths: []string{root}, Files: protoFiles(t, root)})
				if err != nil {
					t.Fatalf("compile %s: %v", side, err)
				}
				return req
			}
			rep, err := CheckCompatibility(compile("old"), compile("new"))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "checked %d events, %d aggregates\n", rep.Events, rep.Aggregates)
			for _, group := range []struct {
				name string
				ps   []CompatProblem
			}{{"breaking", rep.Breaking}, {"warning", rep.Warnings}} {
				var lines []string
				for _, p := range group.ps {
					side := "new/"
					if p.Previous {
						side = "old/"
					}
					d := p.Diagnostic
					d.File = side + d.File
					lines = append(lines, group.name+": "+d.String())
				}
				for _, l := range lines {
					b.WriteString(l + "\n")
				}
			}
			got := b.String()
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("no want file; run go test -update. Got:\n%s", got)
			}
			if want := string(ar.Files[wantIdx].Data); got != want {
				t.Errorf("report differs\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
