package es

import "context"

type metadataKey struct{}
type commandIDKey struct{}

// ContextWithMetadata returns ctx carrying m. The repository copies it into
// every event a command records; the command bus fills in the correlation
// and causation IDs.
func ContextWithMetadata(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, m)
}

// MetadataFromContext returns the metadata ctx carries, or the zero
// Metadata. Its Extra map is shared with ctx: copy it before changing it.
func MetadataFromContext(ctx context.Context) Metadata {
	m, _ := ctx.Value(metadataKey{}).(Metadata)
	return m
}

// ContextWithCommandID returns ctx carrying the ID of the command being
// handled. A command with an ID is handled at most once: the repository
// derives its events' IDs from it (see [CommandEventID]), so a re-sent
// command returns the original result and appends nothing, across process
// restarts.
func ContextWithCommandID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, commandIDKey{}, id)
}

// CommandIDFromContext returns the command ID ctx carries, or "".
func CommandIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(commandIDKey{}).(string)
	return id
}
