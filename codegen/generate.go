package codegen

import (
	"errors"
	"fmt"

	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"
)

// Version is the esgen version written into the header of generated files.
const Version = "v0.1.0-dev"

// Plugin generates the `.esgen.go` file of every file gen is asked to
// generate that declares an aggregate, a command, an event, a projection or
// a process manager. It checks every declaration first and returns an
// [*Error] listing every problem, without generating anything, if one is
// wrong. It is the body of the protoc-gen-go-esgen plugin:
//
//	protogen.Options{}.Run(codegen.Plugin)
func Plugin(gen *protogen.Plugin) error {
	gen.SupportedFeatures = gengo.SupportedFeatures
	gen.SupportedEditionsMinimum = gengo.SupportedEditionsMinimum
	gen.SupportedEditionsMaximum = gengo.SupportedEditionsMaximum
	m := buildModel(gen)
	if len(m.diags) > 0 {
		return &Error{Diagnostics: m.diags}
	}
	for _, f := range sortedFiles(gen) {
		if f.Generate {
			m.generateFile(f)
		}
	}
	return nil
}

// GenerateOptions configures [Generate].
type GenerateOptions struct {
	// ProtocGenGo also writes the `.pb.go` file of every file to generate,
	// with the generator of protoc-gen-go from the pinned protobuf module.
	ProtocGenGo bool
}

// Generate runs the generator on req, as protoc would run protoc-gen-go
// and protoc-gen-go-esgen with req's parameter, and returns the files to
// write, their names relative to the output folder. The `.esgen.go` files
// are byte for byte those the plugin writes for the same request.
//
// Problems in the esgen declarations return an [*Error]; nothing is
// returned to write then.
func Generate(req *pluginpb.CodeGeneratorRequest, opts GenerateOptions) ([]*pluginpb.CodeGeneratorResponse_File, error) {
	// Round-trip the request through its wire form, as a plugin receives it,
	// so that options are parsed exactly as in the plugin.
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode generator request: %w", err)
	}
	wire := new(pluginpb.CodeGeneratorRequest)
	if err := proto.Unmarshal(b, wire); err != nil {
		return nil, fmt.Errorf("decode generator request: %w", err)
	}
	gen, err := protogen.Options{}.New(wire)
	if err != nil {
		return nil, err
	}
	if err := Plugin(gen); err != nil {
		return nil, err
	}
	if opts.ProtocGenGo {
		for _, f := range gen.Files {
			if f.Generate {
				gengo.GenerateFile(gen, f)
			}
		}
	}
	resp := gen.Response()
	if resp.Error != nil {
		return nil, errors.New(resp.GetError())
	}
	return resp.File, nil
}
