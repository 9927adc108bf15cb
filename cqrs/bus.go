package cqrs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/es"
)

// ErrUnknownCommand is returned by [Bus.Send] for a command type no
// handler is registered for.
var ErrUnknownCommand = errors.New("cqrs: no handler for command")

// Result is the outcome of a command: see [es.Result].
type Result struct {
	Stream    string
	Version   int64
	Position  es.Position
	Events    []proto.Message
	Duplicate bool
}

// Handler handles one command.
type Handler func(ctx context.Context, cmd proto.Message) (Result, error)

// Middleware wraps a Handler, to act before and after it.
type Middleware func(next Handler) Handler

// Bus routes commands, by protobuf full name, to the handler registered
// for them, through its middleware. It is safe for concurrent use; register
// handlers before sending.
type Bus struct {
	mu     sync.RWMutex
	routes map[string]Handler
	chain  Handler
}

// NewBus returns a bus whose commands pass through mw in order: the first
// middleware is the outermost.
func NewBus(mw ...Middleware) *Bus {
	b := &Bus{routes: map[string]Handler{}}
	h := Handler(b.dispatch)
	for _, m := range slices.Backward(mw) {
		h = m(h)
	}
	b.chain = h
	return b
}

// Handle registers h for the command type (a protobuf full name). A type
// can have one handler.
func (b *Bus) Handle(commandType string, h Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.routes[commandType]; dup {
		return fmt.Errorf("cqrs: command %s already has a handler", commandType)
	}
	b.routes[commandType] = h
	return nil
}

// Register routes every command of repo's aggregate to repo.
func Register[S, C, E proto.Message](b *Bus, repo *es.Repository[S, C, E]) error {
	var errs []error
	for _, typ := range repo.CommandTypes() {
		errs = append(errs, b.Handle(typ, func(ctx context.Context, cmd proto.Message) (Result, error) {
			c, ok := cmd.(C)
			if !ok {
				return Result{}, fmt.Errorf("cqrs: command %s is routed to an aggregate that does not handle it", typ)
			}
			res, err := repo.Handle(ctx, c)
			out := Result{Stream: res.Stream, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate}
			for _, e := range res.Events {
				out.Events = append(out.Events, e)
			}
			return out, err
		}))
	}
	return errors.Join(errs...)
}

// Send handles cmd. Every command runs with a correlation ID: the one in
// ctx's metadata ([es.ContextWithMetadata]), or a new one. Set a command ID
// with [es.ContextWithCommandID] to make a command safe to re-send.
func (b *Bus) Send(ctx context.Context, cmd proto.Message) (Result, error) {
	if cmd == nil || !cmd.ProtoReflect().IsValid() {
		return Result{}, fmt.Errorf("cqrs: send a nil command: %w", es.ErrInvalidArgument)
	}
	meta := es.MetadataFromContext(ctx)
	if meta.CorrelationID == "" || (meta.CausationID == "" && es.CommandIDFromContext(ctx) == "") {
		instance := es.NewID().String()
		if meta.CorrelationID == "" {
			meta.CorrelationID = instance
		}
		if meta.CausationID == "" && es.CommandIDFromContext(ctx) == "" {
			meta.CausationID = instance
		}
		ctx = es.ContextWithMetadata(ctx, meta)
	}
	return b.chain(ctx, cmd)
}

func (b *Bus) dispatch(ctx context.Context, cmd proto.Message) (Result, error) {
	typ := string(cmd.ProtoReflect().Descriptor().FullName())
	b.mu.RLock()
	h, ok := b.routes[typ]
	b.mu.RUnlock()
	if !ok {
		return Result{}, fmt.Errorf("send %s: %w (registered: %v)", typ, ErrUnknownCommand, b.commandTypes())
	}
	return h(ctx, cmd)
}

func (b *Bus) commandTypes() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	types := make([]string, 0, len(b.routes))
	for t := range b.routes {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}
