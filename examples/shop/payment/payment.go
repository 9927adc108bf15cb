// Package payment is the behaviour of the Payment aggregate: an order is
// charged once, and refunds never exceed the charge. The types it
// implements are generated from proto/shop/payment/v1/payment.proto.
package payment

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/payment/v1"
	"github.com/esgen-dev/esgen/examples/shop/rule"
)

// The rules of a payment. A Decider's rejection matches one of them with
// errors.Is.
var (
	ErrBadAmount      = errors.New("an amount must be positive")
	ErrNoMethod       = errors.New("a charge needs a payment method")
	ErrAlreadyCharged = errors.New("an order is charged once")
	ErrNotCharged     = errors.New("only a charge can be refunded")
	ErrRefundTooLarge = errors.New("refunds cannot exceed the charge")
)

// Decider decides the commands of the Payment aggregate. Its zero value is
// ready to use.
type Decider struct {
	// Now returns the time recorded as charged_at; nil means time.Now.
	Now func() time.Time
}

var _ paymentv1.PaymentDecider = Decider{}

func (d Decider) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// DecideChargePayment charges a positive amount by a given method, if the
// order was not charged before.
func (d Decider) DecideChargePayment(_ context.Context, state *paymentv1.Payment, cmd *paymentv1.ChargePayment) ([]paymentv1.PaymentEvent, error) {
	switch {
	case state.GetChargedCents() > 0:
		return nil, rule.Reject(ErrAlreadyCharged, "order %s was charged %d cents already",
			cmd.GetOrderId(), state.GetChargedCents())
	case cmd.GetAmountCents() <= 0:
		return nil, rule.Reject(ErrBadAmount, "charge %d cents for order %s", cmd.GetAmountCents(), cmd.GetOrderId())
	case cmd.GetMethod() == paymentv1.PaymentMethod_PAYMENT_METHOD_UNSPECIFIED:
		return nil, rule.Reject(ErrNoMethod, "charge order %s", cmd.GetOrderId())
	}
	return []paymentv1.PaymentEvent{&paymentv1.PaymentCharged{
		OrderId:     cmd.GetOrderId(),
		AmountCents: cmd.GetAmountCents(),
		Method:      cmd.GetMethod(),
		ChargedAt:   timestamppb.New(d.now()),
	}}, nil
}

// DecideRefundPayment gives back a positive amount, at most what is left
// of the charge after earlier refunds.
func (Decider) DecideRefundPayment(_ context.Context, state *paymentv1.Payment, cmd *paymentv1.RefundPayment) ([]paymentv1.PaymentEvent, error) {
	left := state.GetChargedCents() - state.GetRefundedCents()
	switch {
	case state.GetChargedCents() == 0:
		return nil, rule.Reject(ErrNotCharged, "refund order %s", cmd.GetOrderId())
	case cmd.GetAmountCents() <= 0:
		return nil, rule.Reject(ErrBadAmount, "refund %d cents of order %s", cmd.GetAmountCents(), cmd.GetOrderId())
	case cmd.GetAmountCents() > left:
		return nil, rule.Reject(ErrRefundTooLarge, "refund %d cents of order %s: %d of the %d cents charged are left",
			cmd.GetAmountCents(), cmd.GetOrderId(), left, state.GetChargedCents())
	}
	return []paymentv1.PaymentEvent{&paymentv1.PaymentRefunded{
		OrderId: cmd.GetOrderId(), AmountCents: cmd.GetAmountCents(), Reason: cmd.GetReason(),
	}}, nil
}

// Evolver applies the events of the Payment aggregate to its state.
type Evolver struct{}

var _ paymentv1.PaymentEvolver = Evolver{}

// EvolvePaymentCharged records the charge.
func (Evolver) EvolvePaymentCharged(state *paymentv1.Payment, e *paymentv1.PaymentCharged) error {
	state.OrderId = e.GetOrderId()
	state.Method = e.GetMethod()
	state.ChargedCents = e.GetAmountCents()
	state.ChargedAt = proto.CloneOf(e.GetChargedAt())
	return nil
}

// EvolvePaymentRefunded adds to what was refunded.
func (Evolver) EvolvePaymentRefunded(state *paymentv1.Payment, e *paymentv1.PaymentRefunded) error {
	state.RefundedCents += e.GetAmountCents()
	return nil
}
