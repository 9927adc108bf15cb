package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serverPrograms must all come from one directory, so that initdb, pg_ctl and
// postgres are of one version.
var serverPrograms = []string{"initdb", "pg_ctl", "postgres"}

// debianLibDir is where Debian and Ubuntu packages install each major version's
// server binaries, off PATH: /usr/lib/postgresql/<version>/bin.
const debianLibDir = "/usr/lib/postgresql"

const installHint = "install them (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL"

// errNoBinaries is returned by findBinDir when no directory holds all the server programs.
var errNoBinaries = errors.New("PostgreSQL server binaries not found: " + installHint)

// searchPlaces says where findBinDir looks, so tests can point it at fake trees.
type searchPlaces struct {
	pathList   string // a PATH-style list of directories
	debianRoot string // holds <version>/bin directories
}

func defaultSearchPlaces() searchPlaces {
	return searchPlaces{pathList: os.Getenv("PATH"), debianRoot: debianLibDir}
}

// findBinDir returns the first directory holding initdb, pg_ctl and postgres:
// first each PATH entry, then `pg_config --bindir` (pg_config itself found on
// that PATH), then the highest-versioned <debianRoot>/*/bin.
func findBinDir(p searchPlaces) (string, error) {
	var tried []string
	try := func(dir string) bool {
		if dir == "" || slices.Contains(tried, dir) {
			return false
		}
		tried = append(tried, dir)
		return hasServerPrograms(dir)
	}

	pathDirs := filepath.SplitList(p.pathList)
	for _, dir := range pathDirs {
		if try(dir) {
			return dir, nil
		}
	}
	if dir := pgConfigBinDir(pathDirs); try(dir) {
		return dir, nil
	}
	for _, dir := range versionedBinDirs(p.debianRoot) {
		if try(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w (looked for %s in: %s)", errNoBinaries,
		strings.Join(serverPrograms, ", "), strings.Join(tried, ", "))
}

func hasServerPrograms(dir string) bool {
	for _, name := range serverPrograms {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path) // follows symlinks, as /usr/local/bin/initdb often is one
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pgConfigBinDir asks the first pg_config found in dirs for its --bindir, or
// returns "" if there is none or it fails.
func pgConfigBinDir(dirs []string) string {
	for _, dir := range dirs {
		pgConfig := filepath.Join(dir, "pg_config")
		if !isExecutable(pgConfig) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	return ""
}

// versionedBinDirs lists root/<version>/bin, highest version first ("16" before
// "15" before "9.6"); entries whose name is not a version are ignored.
func versionedBinDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type versioned struct {
		version []int
		dir     string
	}
	var found []versioned
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		found = append(found, versioned{v, filepath.Join(root, e.Name(), "bin")})
	}
	slices.SortFunc(found, func(a, b versioned) int { return slices.Compare(b.version, a.version) })
	dirs := make([]string, len(found))
	for i, f := range found {
		dirs[i] = f.dir
	}
	return dirs
}

func parseVersion(s string) ([]int, bool) {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}
