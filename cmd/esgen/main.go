// Command esgen scaffolds, generates and checks esgen projects: Go
// event-sourcing apps whose aggregates, commands and events are declared in
// protobuf.
//
//	esgen init bank                    # a new module with a first aggregate
//	esgen new aggregate Order          # add an aggregate and its stubs
//	esgen generate                     # write .pb.go and .esgen.go files
//	esgen generate --check             # fail when generated files are stale
//	esgen check --against origin/main  # fail on changes that break stored events
//
// It needs neither protoc nor any protoc plugin: .proto files are compiled
// in-process. Exit codes: 0 ok, 1 failed, 2 usage error.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
