package migration_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/esgen-dev/esgen/internal/migration"
)

func TestLoad(t *testing.T) {
	good := fstest.MapFS{
		"m/0002_more.sql":  {Data: []byte("B")},
		"m/0001_first.sql": {Data: []byte("A")},
		"m/README.md":      {Data: []byte("ignored")},
		"m/0010_later.sql": {Data: []byte("C")},
	}
	files, err := migration.Load(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Name+"="+f.SQL)
	}
	if strings.Join(got, ",") != "first=A,more=B,later=C" {
		t.Fatalf("Load = %v; want first, more, later in version order", got)
	}
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"bad name", fstest.MapFS{"m/first.sql": {}}, "m/first.sql: name must be NNNN_description.sql"},
		{"zero", fstest.MapFS{"m/0000_x.sql": {}}, "m/0000_x.sql: name must be"},
		{"shared number", fstest.MapFS{"m/0001_a.sql": {}, "m/1_b.sql": {}}, "migrations a and b in m share version 1"},
		{"missing dir", fstest.MapFS{}, "read migrations in m"},
	} {
		if _, err := migration.Load(tc.fs, "m"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load error %v; want it to contain %q", tc.name, err, tc.want)
		}
	}
}
