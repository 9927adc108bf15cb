// Command protoc-gen-go-esgen is esgen's generator as a protoc plugin, for
// buf generate and protoc. It writes the .esgen.go file of every .proto file
// that declares esgen aggregates, commands, events, projections or process
// managers; pair it with protoc-gen-go, which writes the .pb.go files.
//
//	protoc -I proto --go_out=gen --go_opt=paths=source_relative \
//	  --go-esgen_out=gen --go-esgen_opt=paths=source_relative proto/bank/v1/*.proto
//
// It accepts protoc-gen-go's options (paths, module, M mappings) and, for the
// same request, writes the same bytes as esgen generate.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/compiler/protogen"

	"github.com/esgen-dev/esgen/codegen"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("%s %s\n", filepath.Base(os.Args[0]), codegen.Version)
		return
	}
	protogen.Options{}.Run(codegen.Plugin)
}
