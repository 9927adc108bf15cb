// Package migration reads numbered, append-only SQL migrations from a file
// system (usually embedded), for the stores and sinks that keep tables:
// es/pgstore, es/sqlitestore and the read-model sinks. Applying them is each
// store's own business.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// File is one migration step.
type File struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the files of dir in fsys named NNNN_name.sql (such as
// 0001_events.sql), ordered by NNNN. A .sql file named otherwise, or two
// files with one number, is an error naming them.
func Load(fsys fs.FS, dir string) ([]File, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations in %s: %w", dir, err)
	}
	var files []File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_description.sql with NNNN > 0", path.Join(dir, name))
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", path.Join(dir, name), err)
		}
		files = append(files, File{Version: v, Name: rest, SQL: string(b)})
	}
	slices.SortFunc(files, func(a, b File) int { return a.Version - b.Version })
	for i := 1; i < len(files); i++ {
		if files[i].Version == files[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s in %s share version %d", files[i-1].Name, files[i].Name, dir, files[i].Version)
		}
	}
	return files, nil
}
