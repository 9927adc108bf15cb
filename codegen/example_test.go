package codegen_test

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/esgen-dev/esgen/codegen"
)

// Compile a folder of .proto files in-process and generate their Go code,
// as esgen generate does.
func ExampleGenerate() {
	root := filepath.Join("testdata", "sample", "proto")
	req, err := codegen.Compile(context.Background(), codegen.CompileConfig{
		ImportPaths: []string{root},
		Files:       []string{"bank/v1/account.proto", "bank/v1/commands.proto", "bank/v1/events.proto"},
		Parameter:   "paths=source_relative",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	files, err := codegen.Generate(req, codegen.GenerateOptions{ProtocGenGo: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range files {
		fmt.Println(f.GetName())
	}
	// Output:
	// bank/v1/account.esgen.go
	// bank/v1/commands.esgen.go
	// bank/v1/events.esgen.go
	// bank/v1/account.pb.go
	// bank/v1/commands.pb.go
	// bank/v1/events.pb.go
}
