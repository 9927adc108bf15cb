// Package cqrs is esgen's command side around the repository: a [Bus] that
// routes each command to the aggregate that handles it, and middleware for
// logging, validation, metadata and tracing.
//
// The bus owns routing and the context every command runs in (correlation
// and causation IDs). It does not own storage or aggregates: those are
// es.Repository values registered with [Register].
package cqrs
