// Package unhandled must not compile: its Evolver misses an event, which is
// the point of generating one method per event.
package unhandled

import bankv1 "example.com/sample/gen/bank/v1"

type evolver struct{}

func (evolver) EvolveAccountOpened(*bankv1.Account, *bankv1.AccountOpened) error   { return nil }
func (evolver) EvolveMoneyDeposited(*bankv1.Account, *bankv1.MoneyDeposited) error { return nil }
func (evolver) EvolveMoneyWithdrawn(*bankv1.Account, *bankv1.MoneyWithdrawn) error { return nil }
func (evolver) EvolveFreeze_Frozen(*bankv1.Account, *bankv1.Freeze_Frozen) error   { return nil }

var _ bankv1.AccountEvolver = evolver{}

// A command of another aggregate is not an Account command.
var _ bankv1.AccountCommand = (*bankv1.IssueCard)(nil)
