package codegen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	esgenv1 "github.com/esgen-dev/esgen/proto/esgen/v1"
)

// OptionsFile is the import path of the esgen annotations. [Compile] serves
// it from the copy compiled into this package when no import path holds it.
const OptionsFile = "esgen/v1/options.proto"

// CompileConfig says what [Compile] compiles.
type CompileConfig struct {
	// ImportPaths are the folders that import statements are relative to,
	// searched in order, like protoc's -I. Empty means the current folder.
	ImportPaths []string
	// Files are the files to compile and generate, as import paths (relative
	// to one of ImportPaths).
	Files []string
	// Parameter is the plugin parameter the request carries, as protoc's
	// --go_opt would pass it: "paths=source_relative", "module=example.com/m",
	// "Mfile.proto=example.com/m/pkg".
	Parameter string
}

// Compile parses and links the configured files and everything they import,
// in process, and returns the request protoc would send a plugin for them:
// FileToGenerate in the given order, ProtoFile with every file after its
// imports, and source info (comments, positions) only for the files to
// generate, as protoc does. The standard imports (google/protobuf/*.proto)
// and [OptionsFile] need not be on the import path.
//
// A malformed file returns an [*Error] with every problem found, each with
// its position.
func Compile(ctx context.Context, cfg CompileConfig) (*pluginpb.CodeGeneratorRequest, error) {
	if len(cfg.Files) == 0 {
		return nil, errors.New("compile: no .proto files given")
	}
	src := &protocompile.SourceResolver{ImportPaths: cfg.ImportPaths}
	resolver := protocompile.WithStandardImports(protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		res, err := src.FindFileByPath(path)
		if err != nil && path == OptionsFile && errors.Is(err, fs.ErrNotExist) {
			return protocompile.SearchResult{Desc: esgenv1.File_esgen_v1_options_proto}, nil
		}
		return res, err
	}))
	var diags []Diagnostic
	report := func(err reporter.ErrorWithPos) {
		pos := err.GetPosition()
		msg := err.Unwrap().Error()
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
			name := pe.Path
			for _, dir := range cfg.ImportPaths {
				if rel, err := filepath.Rel(dir, pe.Path); err == nil && !strings.HasPrefix(rel, "..") {
					name = filepath.ToSlash(rel)
					break
				}
			}
			msg = fmt.Sprintf("%s not found in the import paths (%s): add the folder that holds it as an import path", name, strings.Join(cfg.ImportPaths, ", "))
		}
		diags = append(diags, canonicalDuplicate(Diagnostic{File: pos.Filename, Line: pos.Line, Col: pos.Col, Message: msg}))
	}
	c := protocompile.Compiler{
		Resolver: resolver,
		// Option locations let esgen point at the option field that is wrong;
		// they add nothing to comments, so the output does not change.
		SourceInfoMode: protocompile.SourceInfoStandard | protocompile.SourceInfoExtraOptionLocations,
		Reporter: reporter.NewReporter(func(err reporter.ErrorWithPos) error {
			report(err)
			return nil
		}, nil),
	}
	files, err := c.Compile(ctx, cfg.Files...)
	var ewp reporter.ErrorWithPos
	if err != nil && len(diags) == 0 && errors.As(err, &ewp) {
		report(ewp)
	}
	if len(diags) > 0 {
		return nil, &Error{Diagnostics: sortDiagnostics(diags)}
	}
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}

	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: slices.Clone(cfg.Files)}
	if cfg.Parameter != "" {
		req.Parameter = &cfg.Parameter
	}
	generate := make(map[string]bool, len(cfg.Files))
	for _, f := range cfg.Files {
		generate[f] = true
	}
	seen := make(map[string]bool)
	var visit func(f protoreflect.FileDescriptor)
	visit = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		var fdp *descriptorpb.FileDescriptorProto
		if r, ok := f.(linker.Result); ok {
			fdp = r.FileDescriptorProto()
		} else {
			fdp = protodesc.ToFileDescriptorProto(f)
		}
		if !generate[f.Path()] && fdp.SourceCodeInfo != nil {
			fdp = cloneWithoutSourceInfo(fdp)
		}
		req.ProtoFile = append(req.ProtoFile, fdp)
	}
	for _, f := range files {
		visit(f)
	}
	return req, nil
}

func cloneWithoutSourceInfo(fdp *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	c := proto.Clone(fdp).(*descriptorpb.FileDescriptorProto)
	c.SourceCodeInfo = nil
	return c
}

var alreadyDefined = regexp.MustCompile(`^symbol "(.+)" already defined at (.+):(\d+):(\d+)$`)

// canonicalDuplicate reports a symbol defined twice at its later
// definition, whichever of the two files the compiler linked first, so that
// the message is the same on every run.
func canonicalDuplicate(d Diagnostic) Diagnostic {
	m := alreadyDefined.FindStringSubmatch(d.Message)
	if m == nil {
		return d
	}
	line, _ := strconv.Atoi(m[3])
	col, _ := strconv.Atoi(m[4])
	other := Diagnostic{File: m[2], Line: line, Col: col}
	if cmp.Or(cmp.Compare(other.File, d.File), cmp.Compare(other.Line, d.Line), cmp.Compare(other.Col, d.Col)) <= 0 {
		return d
	}
	other.Message = fmt.Sprintf("symbol %q already defined at %s:%d:%d", m[1], d.File, d.Line, d.Col)
	return other
}
