package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/esgen-dev/esgen/es"
)

// Subscribe implements [es.Store.Subscribe] with a catch-up subscription to
// $all (SubscribeToAll), which the server filters by stream prefix or event
// type (see subscriptionFilter); system events are left out.
//
// When the server or the connection drops the subscription, Subscribe
// subscribes again from the last position it saw, after a backoff (see
// [WithRetryDelay]), for as long as ctx allows; the caller sees no gap and
// no repeat. It ends with an error for failures a retry cannot mend (access
// denied, an unsupported server), with ctx's error when ctx is done and with
// [es.ErrClosed] when the Store is closed.
func (s *Store) Subscribe(ctx context.Context, after es.Position, filter es.Filter) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "subscribe after " + after.String()
		if err := s.begin(ctx, op); err != nil {
			yield(es.Event{}, err)
			return
		}
		subCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Close ends the subscription by cancelling its context.
		defer context.AfterFunc(s.stopping, cancel)()

		opts := esdb.SubscribeToAllOptions{Filter: subscriptionFilter(filter)}
		last := after
		delay := s.retryMin
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			opts.From = allPosition(last)
			var sub *esdb.Subscription
			err := s.call(subCtx, func(ctx context.Context) (err error) {
				// The subscription lives on subCtx, which Close cancels.
				sub, err = s.client.SubscribeToAll(subCtx, opts)
				return err
			})
			if err == nil {
				var progressed, stopped bool
				progressed, stopped, err = s.receive(sub, &filter, &last, yield)
				sub.Close()
				if stopped {
					return
				}
				if progressed {
					delay = s.retryMin
				}
			}
			switch {
			case s.isClosed():
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed))
				return
			case ctx.Err() != nil:
				yield(es.Event{}, fmt.Errorf("%s: %w", op, ctx.Err()))
				return
			case !retryable(err):
				yield(es.Event{}, s.fail(ctx, op, err))
				return
			}
			s.log.Warn("esdbstore: subscription dropped; subscribing again",
				"after", last.String(), "in", delay, "error", err.Error())
			if timer == nil {
				timer = time.NewTimer(delay)
			} else {
				timer.Reset(delay)
			}
			select {
			case <-subCtx.Done():
				// The next round reports why.
			case <-timer.C:
			}
			delay = min(2*delay, s.retryMax)
		}
	}
}

// errDecode marks an event the subscription could not decode: retrying
// would fail again.
var errDecode = errors.New("esdbstore: undecodable event")

// receive yields the events of sub after *last that match filter, moving
// *last past every event the server sends. It returns whether any new event
// arrived, stopped when the caller stopped iterating, and otherwise the
// error that ended the subscription.
func (s *Store) receive(sub *esdb.Subscription, filter *es.Filter, last *es.Position, yield func(es.Event, error) bool) (progressed, stopped bool, err error) {
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			err := ev.SubscriptionDropped.Error
			if err == nil {
				err = errors.New("subscription dropped")
			}
			return progressed, false, err
		case ev.EventAppeared == nil:
			// A checkpoint, caught up or fell behind: nothing to yield.
			continue
		}
		rec := ev.EventAppeared.OriginalEvent()
		if rec == nil {
			continue
		}
		p := position(rec.Position)
		if !last.Before(p) {
			// Seen before the subscription was renewed.
			continue
		}
		*last, progressed = p, true
		if isSystemEvent(rec.EventType) {
			continue
		}
		e, err := event(rec)
		if err != nil {
			return progressed, false, fmt.Errorf("%w: %w", errDecode, err)
		}
		if !filter.Match(&e) {
			continue
		}
		if !yield(e, nil) {
			return progressed, true, nil
		}
	}
}

// retryable reports whether subscribing again may mend the failure err.
func retryable(err error) bool {
	if errors.Is(err, errDecode) {
		return false
	}
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnsupportedFeature,
			esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeParsing:
			return false
		}
		return true
	}
	// A dropped subscription reports the gRPC stream's error as it is.
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented, codes.InvalidArgument:
		return false
	}
	return true
}
