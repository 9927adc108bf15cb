package payment_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/payment/v1"
	"github.com/esgen-dev/esgen/examples/shop/payment"
)

var now = time.Date(2026, 3, 14, 9, 31, 0, 0, time.UTC)

const card = paymentv1.PaymentMethod_PAYMENT_METHOD_CARD

func newTest(t *testing.T) *paymentv1.PaymentTest {
	return paymentv1.NewPaymentTest(t, payment.Decider{Now: func() time.Time { return now }}, payment.Evolver{})
}

func charged(cents int64) *paymentv1.PaymentCharged {
	return &paymentv1.PaymentCharged{OrderId: "o1", AmountCents: cents, Method: card, ChargedAt: timestamppb.New(now)}
}

func refunded(cents int64) *paymentv1.PaymentRefunded {
	return &paymentv1.PaymentRefunded{OrderId: "o1", AmountCents: cents, Reason: "cancelled"}
}

func TestChargePayment_RecordsAmountMethodAndTime(t *testing.T) {
	newTest(t).
		When(&paymentv1.ChargePayment{OrderId: "o1", AmountCents: 3399, Method: card}).
		Then(charged(3399)).
		ThenState(&paymentv1.Payment{OrderId: "o1", Method: card, ChargedCents: 3399, ChargedAt: timestamppb.New(now)})
}

func TestRefundPayment_InPartsUpToTheCharge(t *testing.T) {
	newTest(t).
		Given(charged(3399), refunded(1000)).
		When(&paymentv1.RefundPayment{OrderId: "o1", AmountCents: 2399, Reason: "cancelled"}).
		Then(refunded(2399)).
		ThenState(&paymentv1.Payment{OrderId: "o1", Method: card, ChargedCents: 3399, RefundedCents: 3399, ChargedAt: timestamppb.New(now)})
}

func TestCommands_RejectedByTheRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		given []paymentv1.PaymentEvent
		cmd   paymentv1.PaymentCommand
		want  error
	}{
		{"charge twice", []paymentv1.PaymentEvent{charged(3399)}, &paymentv1.ChargePayment{OrderId: "o1", AmountCents: 3399, Method: card}, payment.ErrAlreadyCharged},
		{"charge after a full refund", []paymentv1.PaymentEvent{charged(3399), refunded(3399)}, &paymentv1.ChargePayment{OrderId: "o1", AmountCents: 3399, Method: card}, payment.ErrAlreadyCharged},
		{"charge nothing", nil, &paymentv1.ChargePayment{OrderId: "o1", Method: card}, payment.ErrBadAmount},
		{"charge without a method", nil, &paymentv1.ChargePayment{OrderId: "o1", AmountCents: 3399}, payment.ErrNoMethod},
		{"refund without a charge", nil, &paymentv1.RefundPayment{OrderId: "o1", AmountCents: 1}, payment.ErrNotCharged},
		{"refund nothing", []paymentv1.PaymentEvent{charged(3399)}, &paymentv1.RefundPayment{OrderId: "o1"}, payment.ErrBadAmount},
		{"refund more than charged", []paymentv1.PaymentEvent{charged(3399)}, &paymentv1.RefundPayment{OrderId: "o1", AmountCents: 3400}, payment.ErrRefundTooLarge},
		{"refund more than is left", []paymentv1.PaymentEvent{charged(3399), refunded(3000)}, &paymentv1.RefundPayment{OrderId: "o1", AmountCents: 400}, payment.ErrRefundTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTest(t).Given(tc.given...).When(tc.cmd).ThenError(tc.want)
		})
	}
}
