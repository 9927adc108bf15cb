// Package codegen is esgen's code generator as a library: it compiles
// `.proto` files in-process, reads the esgen.v1 options that declare
// aggregates, commands, events, projections and process managers, checks
// them, and writes the standard `.pb.go` files (through protoc-gen-go's
// generator, pinned with the protobuf module) and the `.esgen.go` files.
//
// The esgen CLI (cmd/esgen) and the protoc plugin (cmd/protoc-gen-go-esgen)
// are thin shells around this package, and produce the same `.esgen.go`
// bytes for the same request.
//
// Package codegen owns the generated surface and the schema compatibility
// rules of `esgen check` ([CheckCompatibility]). It depends on the esgen.v1
// options package only, never on the runtime: generated code imports
// github.com/esgen-dev/esgen/es, the generator does not.
//
// # Determinism
//
// The output depends only on the request: files are visited in path order,
// declarations in source order, and nothing iterates over a map without
// sorting its keys. Golden tests in this package hold the output to that.
package codegen
