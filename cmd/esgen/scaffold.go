package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"unicode"
)

//go:embed templates
var templates embed.FS

// scaffold is the data of the templates of esgen init and esgen new.
type scaffold struct {
	// Name is the module's short name (init) or the aggregate's name (new).
	Name         string
	Module       string
	ESGenVersion string
	Replace      string

	ProtoPackage  string // "account.v1"
	ProtoDir      string // "account/v1"
	ProtoFile     string // "proto/account/v1/account.proto"
	GoImportPath  string // "example.com/bank/gen/account/v1"
	GoPackageName string // "accountv1"

	IDField string // "order_id"
	GoDir   string // "order": the stub package's folder and name
	StubDir string // "internal/order"
}

// render executes the template at name (under templates/) with data. Go
// output is gofmt-ed.
func render(name string, data scaffold) ([]byte, error) {
	src, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	if strings.HasSuffix(name, ".go.tmpl") {
		formatted, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		return formatted, nil
	}
	return b.Bytes(), nil
}

// writeNew writes content to path unless a file is there already; it never
// overwrites. It reports what it did on w.
func writeNew(w io.Writer, path string, content []byte) error {
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(w, "kept %s (it exists; esgen never overwrites it)\n", path)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "created %s\n", path)
	return nil
}

var (
	protoPackageRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	identRE        = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	versionRE      = regexp.MustCompile(`^v[0-9]+([a-z]+[0-9]*)?$`)
)

// goPackageName derives a Go package name from a protobuf package, as buf's
// conventions do: the last two parts when the last is a version
// ("shop.order.v1" → "orderv1"), else the last part.
func goPackageName(protoPkg string) string {
	parts := strings.Split(protoPkg, ".")
	last := parts[len(parts)-1]
	if len(parts) > 1 && versionRE.MatchString(last) {
		last = parts[len(parts)-2] + last
	}
	return strings.ReplaceAll(last, "_", "")
}

// snake turns "BankAccount" into "bank_account" and "HTTPServer" into
// "http_server".
func snake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && !unicode.IsUpper(rs[i-1])
			nextLower := i > 0 && i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])
			if prevLower || nextLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
