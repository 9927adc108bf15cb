package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/esgen-dev/esgen/es/memstore"
)

func TestRun_PrintsTheTour(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, memstore.New()); err != nil {
		t.Fatal(err)
	}
	const want = `opened account-42 with 150.00; stream at version 2
teller A withdrew 120.00 at version 2
teller B was stopped: expected version 2, stream is at 3
teller B retried at version 3: insufficient funds: balance 30.00, withdrawal 100.00
  account-42 v1 bank.v1.AccountOpened   100.00
  account-42 v2 bank.v1.MoneyDeposited   50.00
  account-42 v3 bank.v1.MoneyWithdrawn  120.00
balance: 30.00
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
