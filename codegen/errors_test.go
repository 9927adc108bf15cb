package codegen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestGenerate_ErrorsMatchGolden runs each testdata/errors/*.txtar: its
// .proto files are compiled and generated together, and the error must be
// exactly the archive's "want" file (rewritten with -update). Every problem
// carries file:line:col and says what to change; nothing is generated.
func TestGenerate_ErrorsMatchGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "errors", "*.txtar"))
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
			var files []string
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					wantIdx = i
					continue
				}
				writeFile(t, filepath.Join(dir, f.Name), string(f.Data))
				if strings.HasSuffix(f.Name, ".proto") {
					files = append(files, f.Name)
				}
			}
			slices.Sort(files)
			var got string
			req, err := Compile(context.Background(), CompileConfig{ImportPaths: []string{dir}, Files: files})
			if err == nil {
				var out any
				out, err = Generate(req, GenerateOptions{ProtocGenGo: true})
				if err == nil {
					t.Fatalf("generated %v without an error", out)
				}
			}
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v is not a *codegen.Error", err)
			}
			got = strings.ReplaceAll(err.Error(), dir, "$WORK") + "\n"
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
				t.Errorf("error differs\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
