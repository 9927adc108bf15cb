package main

import (
	"context"

	"github.com/esgen-dev/esgen/es"
	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
	paymentv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/payment/v1"
	reportv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/report/v1"
)

// summarizer is the projector of the Summary read model: it counts into
// one Summary message.
type summarizer struct{ sum *reportv1.Summary }

var _ reportv1.SummaryProjector = summarizer{}

func (p summarizer) ProjectOrderPlaced(context.Context, *orderv1.OrderPlaced, es.Event) error {
	p.sum.Orders++
	return nil
}

func (p summarizer) ProjectOrderShipped(context.Context, *orderv1.OrderShipped, es.Event) error {
	p.sum.Shipped++
	return nil
}

func (p summarizer) ProjectOrderCancelled(context.Context, *orderv1.OrderCancelled, es.Event) error {
	p.sum.Cancelled++
	return nil
}

func (p summarizer) ProjectPaymentCharged(_ context.Context, e *paymentv1.PaymentCharged, _ es.Event) error {
	p.sum.ChargedCents += e.GetAmountCents()
	return nil
}

func (p summarizer) ProjectPaymentRefunded(_ context.Context, e *paymentv1.PaymentRefunded, _ es.Event) error {
	p.sum.RefundedCents += e.GetAmountCents()
	return nil
}

// readSummary folds the whole global log into a Summary: the read model of
// the in-memory store (see foldModel).
func readSummary(ctx context.Context, store es.Store) (*reportv1.Summary, error) {
	sum := new(reportv1.Summary)
	projection := reportv1.NewSummaryProjection(summarizer{sum})
	for rec, err := range store.ReadAll(ctx, es.Position{}, 0) {
		if err != nil {
			return nil, err
		}
		if err := projection.Handle(ctx, rec); err != nil {
			return nil, err
		}
	}
	return sum, nil
}
