package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/esgen-dev/esgen/codegen"
)

// project is what esgen reads from the project folder: buf.yaml,
// buf.gen.yaml and go.mod, where present.
type project struct {
	// dir is the project folder (the current folder for the CLI).
	dir string
	// bufModules are the module folders of buf.yaml (v2 modules[].path, v1
	// the folder of buf.yaml itself), relative to dir.
	bufModules []string
	// genOut and genOpts come from the Go plugin of buf.gen.yaml;
	// genInputs from its v2 inputs[].directory.
	genOut    string
	genOpts   []string
	genInputs []string
	// notes are warnings about configuration esgen does not follow.
	notes []string
}

func loadProject(dir string) (*project, error) {
	p := &project{dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "buf.yaml")); err == nil {
		doc, err := parseYAML(string(b))
		if err != nil {
			return nil, fmt.Errorf("read buf.yaml: %w", err)
		}
		m := yamlMap(doc)
		switch yamlString(m["version"]) {
		case "v2":
			for _, mod := range yamlList(m["modules"]) {
				p.bufModules = append(p.bufModules, cleanRel(yamlString(yamlMap(mod)["path"])))
			}
			if len(p.bufModules) == 0 {
				p.bufModules = []string{"."}
			}
		case "v1beta1":
			for _, r := range yamlList(yamlMap(m["build"])["roots"]) {
				p.bufModules = append(p.bufModules, cleanRel(yamlString(r)))
			}
			if len(p.bufModules) == 0 {
				p.bufModules = []string{"."}
			}
		default:
			p.bufModules = []string{"."}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "buf.gen.yaml")); err == nil {
		doc, err := parseYAML(string(b))
		if err != nil {
			return nil, fmt.Errorf("read buf.gen.yaml: %w", err)
		}
		m := yamlMap(doc)
		for _, pl := range yamlList(m["plugins"]) {
			pm := yamlMap(pl)
			name := ""
			for _, k := range []string{"local", "remote", "plugin", "name"} {
				if s := yamlString(pm[k]); s != "" {
					name = s
					break
				}
			}
			base := path.Base(strings.SplitN(name, ":", 2)[0])
			if base == "go" || base == "protoc-gen-go" {
				p.genOut = cleanRel(yamlString(pm["out"]))
				for _, o := range yamlList(pm["opt"]) {
					p.genOpts = append(p.genOpts, strings.Split(yamlString(o), ",")...)
				}
			}
		}
		for _, in := range yamlList(m["inputs"]) {
			if d := yamlString(yamlMap(in)["directory"]); d != "" {
				p.genInputs = append(p.genInputs, cleanRel(d))
			}
		}
		if mg := yamlMap(m["managed"]); yamlString(mg["enabled"]) == "true" {
			p.notes = append(p.notes, "buf.gen.yaml enables managed mode, which esgen does not apply: set go_package in every .proto file")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return p, nil
}

// path resolves a path given relative to the project folder.
func (p *project) path(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(p.dir, name)
}

func cleanRel(p string) string {
	if p == "" {
		return "."
	}
	return filepath.Clean(filepath.FromSlash(p))
}

// sourceFlags are the flags that say which .proto files to read.
type sourceFlags struct {
	importPaths []string
}

func (f *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.importPaths, "proto-path", "I", nil, "folder that imports are relative to (repeatable); default: the buf.yaml modules, else ./proto if it exists, else .")
}

// outputFlags are the flags that say where generated files go.
type outputFlags struct {
	out    string
	paths  string
	module string
	opts   []string
}

func (f *outputFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.out, "out", "", "output folder; default: the out of the Go plugin in buf.gen.yaml, else .")
	fs.StringVar(&f.paths, "paths", "", `output layout: "import" (by go_package import path) or "source_relative" (beside the .proto path); default: from buf.gen.yaml, else import`)
	fs.StringVar(&f.module, "module", "", "with --paths=import, the Go import path prefix to strip from output names; default: the module of the go.mod that holds the output folder")
	fs.StringArrayVar(&f.opts, "opt", nil, "extra protoc-gen-go option, such as Mfoo.proto=example.com/foo (repeatable)")
}

// sources is the resolved set of .proto files to read.
type sources struct {
	importPaths []string
	// files are import paths of the files to compile and generate.
	files []string
}

// resolveSources decides the import paths and the files to compile, from
// the flags, the arguments (files or folders) and the project's buf files.
func resolveSources(p *project, f sourceFlags, args []string) (*sources, error) {
	s := &sources{}
	switch {
	case len(f.importPaths) > 0:
		for _, ip := range f.importPaths {
			s.importPaths = append(s.importPaths, p.path(ip))
		}
	case len(p.bufModules) > 0:
		for _, m := range p.bufModules {
			s.importPaths = append(s.importPaths, filepath.Join(p.dir, m))
		}
	default:
		if st, err := os.Stat(filepath.Join(p.dir, "proto")); err == nil && st.IsDir() {
			s.importPaths = []string{filepath.Join(p.dir, "proto")}
		} else {
			s.importPaths = []string{p.dir}
		}
	}
	for _, ip := range s.importPaths {
		if st, err := os.Stat(ip); err != nil || !st.IsDir() {
			return nil, usagef("import path %s is not a folder", ip)
		}
	}
	roots := args
	if len(roots) == 0 {
		for _, in := range p.genInputs {
			roots = append(roots, filepath.Join(p.dir, in))
		}
	} else {
		roots = nil
		for _, a := range args {
			roots = append(roots, p.path(a))
		}
	}
	explicit := len(roots) > 0
	if !explicit {
		roots = s.importPaths
	}
	seen := make(map[string]bool)
	for _, root := range roots {
		st, err := os.Stat(root)
		if err != nil {
			return nil, usagef("%s: no such file or folder", root)
		}
		if !st.IsDir() {
			if !strings.HasSuffix(root, ".proto") {
				return nil, usagef("%s is not a .proto file", root)
			}
			name, err := s.importName(root)
			if err != nil {
				return nil, err
			}
			if !seen[name] {
				seen[name] = true
				s.files = append(s.files, name)
			}
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "vendor" || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".proto") {
				return nil
			}
			name, err := s.importName(path)
			if err != nil {
				return err
			}
			// Copies of the standard imports and of the esgen options
			// belong to other Go modules: never generate them.
			if strings.HasPrefix(name, "google/protobuf/") || name == codegen.OptionsFile {
				return nil
			}
			if !seen[name] {
				seen[name] = true
				s.files = append(s.files, name)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("no .proto files found in %s", strings.Join(roots, ", "))
	}
	slices.Sort(s.files)
	return s, nil
}

// importName returns the import path of the file at path.
func (s *sources) importName(p string) (string, error) {
	for _, ip := range s.importPaths {
		rel, err := filepath.Rel(ip, p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel), nil
		}
	}
	return "", usagef("%s is not inside an import path (%s): add its root with -I", p, strings.Join(s.importPaths, ", "))
}

// diskPath returns where the file with import path name is, for messages,
// relative to the project folder; name itself when it is not on disk.
func (s *sources) diskPath(p *project, name string) string {
	for _, ip := range s.importPaths {
		full := filepath.Join(ip, filepath.FromSlash(name))
		if _, err := os.Stat(full); err == nil {
			if rel, err := filepath.Rel(p.dir, full); err == nil {
				return rel
			}
			return full
		}
	}
	return name
}

// output is the resolved output layout.
type output struct {
	dir       string
	parameter string
}

func resolveOutput(p *project, f outputFlags) (*output, error) {
	o := &output{dir: p.genOut}
	if f.out != "" {
		o.dir = filepath.Clean(f.out)
	}
	if o.dir == "" {
		o.dir = "."
	}
	o.dir = p.path(o.dir)
	var params []string
	pathsOpt, moduleOpt := "", ""
	for _, opt := range p.genOpts {
		opt = strings.TrimSpace(opt)
		switch {
		case opt == "":
		case strings.HasPrefix(opt, "paths="):
			pathsOpt = strings.TrimPrefix(opt, "paths=")
		case strings.HasPrefix(opt, "module="):
			moduleOpt = strings.TrimPrefix(opt, "module=")
		default:
			params = append(params, opt)
		}
	}
	if f.paths != "" {
		pathsOpt = f.paths
	}
	if f.module != "" {
		moduleOpt = f.module
	}
	switch pathsOpt {
	case "", "import":
		if moduleOpt == "" {
			moduleOpt = moduleOf(o.dir)
		}
	case "source_relative":
		if f.module != "" {
			return nil, usagef("--module applies to --paths=import only")
		}
		moduleOpt = ""
	default:
		return nil, usagef(`--paths must be "import" or "source_relative", not %q`, pathsOpt)
	}
	if pathsOpt != "" {
		params = append(params, "paths="+pathsOpt)
	}
	if moduleOpt != "" {
		params = append(params, "module="+moduleOpt)
	}
	params = append(params, f.opts...)
	o.parameter = strings.Join(params, ",")
	return o, nil
}

// moduleOf returns the Go import path of folder dir, from the go.mod of dir
// or of its nearest parent that has one; "" when there is none.
func moduleOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		if mod := modulePath(filepath.Join(d, "go.mod")); mod != "" {
			rel, err := filepath.Rel(d, abs)
			if err != nil {
				return ""
			}
			if rel == "." {
				return mod
			}
			return mod + "/" + filepath.ToSlash(rel)
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// modulePath reads the module path of a go.mod file; "" if it has none.
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
