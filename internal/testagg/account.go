package testagg

import (
	"context"
	"errors"
	"fmt"

	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// ErrInsufficientFunds rejects a withdrawal larger than the balance.
var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is the hand-written half of the Account aggregate: its Decider
// and Evolver.
type Account struct{}

// New returns the Account aggregate, ready for a repository.
func New() testaggv1.AccountAggregate { return testaggv1.NewAccountAggregate(Account{}, Account{}) }

// DecideOpen opens an account.
func (Account) DecideOpen(_ context.Context, _ *testaggv1.Account, cmd *testaggv1.Open) ([]testaggv1.AccountEvent, error) {
	return []testaggv1.AccountEvent{&testaggv1.Opened{AccountId: cmd.AccountId, Owner: cmd.Owner}}, nil
}

// DecideDeposit adds a positive amount.
func (Account) DecideDeposit(_ context.Context, state *testaggv1.Account, cmd *testaggv1.Deposit) ([]testaggv1.AccountEvent, error) {
	if state.AccountId == "" {
		return nil, fmt.Errorf("deposit to account %q: not opened", cmd.AccountId)
	}
	if cmd.Amount <= 0 {
		return nil, fmt.Errorf("deposit %d: the amount must be positive", cmd.Amount)
	}
	return []testaggv1.AccountEvent{&testaggv1.Deposited{Amount: cmd.Amount}}, nil
}

// DecideWithdraw takes an amount the balance covers.
func (Account) DecideWithdraw(_ context.Context, state *testaggv1.Account, cmd *testaggv1.Withdraw) ([]testaggv1.AccountEvent, error) {
	if cmd.Amount > state.Balance {
		return nil, fmt.Errorf("withdraw %d from a balance of %d: %w", cmd.Amount, state.Balance, ErrInsufficientFunds)
	}
	return []testaggv1.AccountEvent{&testaggv1.Withdrawn{Amount: cmd.Amount}}, nil
}

// EvolveOpened applies Opened.
func (Account) EvolveOpened(state *testaggv1.Account, e *testaggv1.Opened) error {
	state.AccountId, state.Owner = e.AccountId, e.Owner
	return nil
}

// EvolveDeposited applies Deposited.
func (Account) EvolveDeposited(state *testaggv1.Account, e *testaggv1.Deposited) error {
	state.Balance += e.Amount
	state.Deposits++
	return nil
}

// EvolveWithdrawn applies Withdrawn.
func (Account) EvolveWithdrawn(state *testaggv1.Account, e *testaggv1.Withdrawn) error {
	state.Balance -= e.Amount
	return nil
}
