// Package sample_test exercises the code esgen generates for the sample
// protos: it is copied, with the generated files, into a throwaway module
// by codegen's TestGenerate_SampleCompilesAndRuns.
package sample_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	bankv1 "example.com/sample/gen/bank/v1"
	_type "example.com/sample/gen/clash/type"
	commonv1 "example.com/sample/gen/common/v1"
	editionsv1 "example.com/sample/gen/editions/v1"
	legacyv1 "example.com/sample/gen/legacy/v1"
	reportingv1 "example.com/sample/gen/reporting/v1"
	"github.com/esgen-dev/esgen/es"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var errInsufficientFunds = errors.New("insufficient funds")

// account implements both halves of the Account aggregate.
type account struct{}

var (
	_ bankv1.AccountDecider = account{}
	_ bankv1.AccountEvolver = account{}
)

func (account) DecideOpenAccount(_ context.Context, _ *bankv1.Account, cmd *bankv1.OpenAccount) ([]bankv1.AccountEvent, error) {
	return []bankv1.AccountEvent{&bankv1.AccountOpened{
		AccountId: cmd.GetAccountId(), Owner: cmd.GetOwner(), Address: cmd.GetAddress(), Currency: cmd.GetCurrency(),
		OpenedAt: timestamppb.Now(),
	}}, nil
}

func (account) DecideDepositMoney(_ context.Context, state *bankv1.Account, cmd *bankv1.DepositMoney) ([]bankv1.AccountEvent, error) {
	if state.GetStatus() != bankv1.Account_STATUS_OPEN {
		return nil, errors.New("account is not open")
	}
	return []bankv1.AccountEvent{&bankv1.MoneyDeposited{AccountId: cmd.GetAccountId(), Amount: cmd.GetAmount(), Labels: map[string]string{"b": "2", "a": "1"}}}, nil
}

func (account) DecideWithdrawMoney(_ context.Context, state *bankv1.Account, cmd *bankv1.WithdrawMoney) ([]bankv1.AccountEvent, error) {
	if state.GetBalance().GetUnits()+state.GetOverdraftLimit() < cmd.GetAmount().GetUnits() {
		return nil, errInsufficientFunds
	}
	return []bankv1.AccountEvent{&bankv1.MoneyWithdrawn{AccountId: cmd.GetAccount(), Amount: cmd.GetAmount(), Notes: []string{"atm"}, Hold: durationpb.New(0)}}, nil
}

func (account) EvolveAccountOpened(state *bankv1.Account, e *bankv1.AccountOpened) error {
	state.AccountId = e.GetAccountId()
	state.Status = bankv1.Account_STATUS_OPEN
	state.Balance = &commonv1.Money{Currency: e.GetCurrency()}
	state.Holder = &bankv1.Account_Holder{Name: e.GetOwner(), Address: e.GetAddress()}
	state.OpenedAt = e.GetOpenedAt()
	state.Limits = map[string]int64{"daily": 500}
	state.Tags = append(state.Tags, "new")
	state.Attributes, _ = structpb.NewStruct(map[string]any{"channel": "web"})
	return nil
}

func (account) EvolveMoneyDeposited(state *bankv1.Account, e *bankv1.MoneyDeposited) error {
	state.Balance.Units += e.GetAmount().GetUnits()
	return nil
}

func (account) EvolveMoneyWithdrawn(state *bankv1.Account, e *bankv1.MoneyWithdrawn) error {
	state.Balance.Units -= e.GetAmount().GetUnits()
	return nil
}

func (account) EvolveFundsDeposited(state *bankv1.Account, e *bankv1.FundsDeposited) error {
	state.Balance.Units += e.GetCents()
	return nil
}

func (account) EvolveFreeze_Frozen(state *bankv1.Account, _ *bankv1.Freeze_Frozen) error {
	state.Status = bankv1.Account_STATUS_CLOSED
	return nil
}

func opened(id string) *bankv1.AccountOpened {
	return &bankv1.AccountOpened{AccountId: id, Owner: "Ada", Currency: commonv1.Currency_CURRENCY_EUR}
}

func eur(units int64) *commonv1.Money {
	return &commonv1.Money{Units: units, Currency: commonv1.Currency_CURRENCY_EUR}
}

func TestAccount_GivenWhenThen(t *testing.T) {
	bankv1.NewAccountTest(t, account{}, account{}).
		Given(opened("a1"), &bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(100)}).
		When(&bankv1.WithdrawMoney{Account: "a1", Amount: eur(30)}).
		Then(&bankv1.MoneyWithdrawn{AccountId: "a1", Amount: eur(30), Notes: []string{"atm"}, Hold: durationpb.New(0)})

	s := bankv1.NewAccountTest(t, account{}, account{}).
		Given(opened("a1"), &bankv1.FundsDeposited{AccountId: "a1", Cents: 5}).
		When(&bankv1.WithdrawMoney{Account: "a1", Amount: eur(50)}).
		ThenError(errInsufficientFunds)
	if s.State().GetBalance().GetUnits() != 5 {
		t.Errorf("balance after a deprecated FundsDeposited = %d, want 5", s.State().GetBalance().GetUnits())
	}

	bankv1.NewAccountTest(t, account{}, account{}).
		Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(7)}).
		ThenState(&bankv1.Account{
			AccountId: "a1", Status: bankv1.Account_STATUS_OPEN, Balance: eur(7),
			Holder: &bankv1.Account_Holder{Name: "Ada"}, Tags: []string{"new"},
			Limits: map[string]int64{"daily": 500}, Attributes: mustStruct(t, map[string]any{"channel": "web"}),
		})
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccount_CreatingTwiceFailsAsInTheRepository(t *testing.T) {
	s := bankv1.NewAccountTest(t, account{}, account{}).
		Given(opened("a1")).
		When(&bankv1.OpenAccount{AccountId: "a1", Owner: "Bob"}).
		ThenError(es.ErrAlreadyExists)
	if want := `bank.v1.Account "a1" (stream "Account-a1" at version 1): es: aggregate already exists`; s.Err().Error() != want {
		t.Errorf("error = %q, want %q", s.Err(), want)
	}
}

func TestAccount_EmptyIDNamesCommandAndField(t *testing.T) {
	s := bankv1.NewAccountTest(t, account{}, account{}).When(&bankv1.WithdrawMoney{Amount: eur(1)}).ThenError(nil)
	want := "command bank.v1.WithdrawMoney has an empty account: set the ID of the Account it targets"
	if s.Err().Error() != want {
		t.Errorf("error = %q, want %q", s.Err(), want)
	}
}

// recorder is a testing.TB stand-in that records Fatalf instead of stopping.
type recorder struct{ msgs []string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// checkLines checks that msg has one line per prefix, each starting with it,
// and that every message in it sits on one line, braces closed.
func checkLines(t *testing.T, msg string, prefixes ...string) {
	t.Helper()
	lines := strings.Split(msg, "\n")
	if len(lines) != len(prefixes) {
		t.Fatalf("message has %d lines, want %d:\n%s", len(lines), len(prefixes), msg)
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, prefixes[i]) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, line, prefixes[i])
		}
		if strings.Count(line, "{") != strings.Count(line, "}") {
			t.Errorf("line %d = %q: a message spans lines", i+1, line)
		}
	}
}

func TestAccountTest_ReportsDifferentEventsReadably(t *testing.T) {
	deposited := &bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(1), Labels: map[string]string{"a": "1", "b": "2"}}
	r := &recorder{}
	bankv1.NewAccountTest(r, account{}, account{}).Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		Then(&bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(2)}, opened("a2"))
	if len(r.msgs) != 1 {
		t.Fatalf("Fatalf calls = %q, want one", r.msgs)
	}
	checkLines(t, r.msgs[0],
		"events differ (got 1, want 2):",
		`  1. got:  bank.v1.MoneyDeposited {account_id:`,
		`     want: bank.v1.MoneyDeposited {account_id:`,
		"  2. got:  (none)",
		`     want: bank.v1.AccountOpened {account_id:`)
	t.Logf("Then failed with:\n%s", r.msgs[0])

	r = &recorder{}
	bankv1.NewAccountTest(r, account{}, account{}).Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		Then(deposited, opened("a2"))
	if len(r.msgs) != 1 {
		t.Fatalf("Fatalf calls = %q, want one", r.msgs)
	}
	checkLines(t, r.msgs[0],
		"events differ (got 1, want 2):",
		`  1. same: bank.v1.MoneyDeposited {account_id:`,
		"  2. got:  (none)",
		`     want: bank.v1.AccountOpened {account_id:`)

	r = &recorder{}
	bankv1.NewAccountTest(r, account{}, account{}).Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		ThenError(nil)
	if len(r.msgs) != 1 {
		t.Fatalf("Fatalf calls = %q, want one", r.msgs)
	}
	checkLines(t, r.msgs[0], "want an error, got events:", `  1. bank.v1.MoneyDeposited {account_id:`)

	r = &recorder{}
	bankv1.NewAccountTest(r, account{}, account{}).Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		ThenState(&bankv1.Account{AccountId: "a1"})
	if len(r.msgs) != 1 {
		t.Fatalf("Fatalf calls = %q, want one", r.msgs)
	}
	checkLines(t, r.msgs[0], "state differs", `  got:  bank.v1.Account {account_id:`, `  want: bank.v1.Account {account_id:`)
	t.Logf("ThenState failed with:\n%s", r.msgs[0])
}

// emitsDeprecated decides a deprecated event type.
type emitsDeprecated struct{ account }

func (emitsDeprecated) DecideDepositMoney(_ context.Context, _ *bankv1.Account, cmd *bankv1.DepositMoney) ([]bankv1.AccountEvent, error) {
	return []bankv1.AccountEvent{&bankv1.FundsDeposited{AccountId: cmd.GetAccountId(), Cents: cmd.GetAmount().GetUnits()}}, nil
}

func TestAccountTest_FailsOnDeprecatedEvent(t *testing.T) {
	r := &recorder{}
	bankv1.NewAccountTest(r, emitsDeprecated{}, account{}).
		Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		Then(&bankv1.FundsDeposited{AccountId: "a1", Cents: 1})
	if len(r.msgs) == 0 || !strings.Contains(r.msgs[0], "deprecated type bank.v1.FundsDeposited; emit MoneyDeposited instead") {
		t.Errorf("Fatalf calls = %q, want one about the deprecated type", r.msgs)
	}
}

// mutates changes the state while deciding, which a Decider must not do.
type mutates struct{ account }

func (mutates) DecideDepositMoney(_ context.Context, state *bankv1.Account, _ *bankv1.DepositMoney) ([]bankv1.AccountEvent, error) {
	state.Tags = append(state.Tags, "oops")
	return nil, nil
}

func TestAccountTest_FailsWhenDeciderChangesState(t *testing.T) {
	r := &recorder{}
	bankv1.NewAccountTest(r, mutates{}, account{}).Given(opened("a1")).When(&bankv1.DepositMoney{AccountId: "a1"})
	if len(r.msgs) != 1 || !strings.Contains(r.msgs[0], "changed the state") {
		t.Errorf("Fatalf calls = %q, want one about changing the state", r.msgs)
	}
}

func TestAccountTest_ReportsDifferentEvents(t *testing.T) {
	r := &recorder{}
	bankv1.NewAccountTest(r, account{}, account{}).Given(opened("a1")).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		Then(&bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(2)})
	if len(r.msgs) != 1 || !strings.HasPrefix(r.msgs[0], "events differ") {
		t.Errorf("Fatalf calls = %q, want one saying the events differ", r.msgs)
	}
}

func TestAccountAggregate_Descriptor(t *testing.T) {
	agg := bankv1.NewAccountAggregate(account{}, account{})
	if got := agg.Name(); got != "bank.v1.Account" {
		t.Errorf("Name = %q", got)
	}
	if got := agg.StreamName("42"); got != "Account-42" {
		t.Errorf("StreamName = %q", got)
	}
	if id, ok := bankv1.AccountIDFromStream("Account-42"); !ok || id != "42" {
		t.Errorf("AccountIDFromStream = %q, %v", id, ok)
	}
	if _, ok := bankv1.AccountIDFromStream("card-42"); ok {
		t.Error("AccountIDFromStream accepted a card stream")
	}
	if got := bankv1.CardStreamName("7"); got != "card-7" {
		t.Errorf("CardStreamName = %q", got)
	}
	if agg.SnapshotEvery() != 200 || len(agg.StateFingerprint()) != 32 {
		t.Errorf("SnapshotEvery = %d, StateFingerprint = %q", agg.SnapshotEvery(), agg.StateFingerprint())
	}
	if !agg.Creates(&bankv1.OpenAccount{}) || agg.Creates(&bankv1.DepositMoney{}) {
		t.Error("Creates is wrong")
	}
	if got, want := agg.EventTypes(), []string{"bank.v1.AccountOpened", "bank.v1.MoneyDeposited", "bank.v1.MoneyWithdrawn", "bank.v1.FundsDeposited", "bank.v1.Freeze.Frozen"}; !slices.Equal(got, want) {
		t.Errorf("EventTypes = %q, want %q", got, want)
	}
	if got, want := agg.CommandTypes(), []string{"bank.v1.OpenAccount", "bank.v1.DepositMoney", "bank.v1.WithdrawMoney"}; !slices.Equal(got, want) {
		t.Errorf("CommandTypes = %q, want %q", got, want)
	}
	if subject, fields := agg.PersonalData(bankv1.AccountOpenedEventType); subject != "account_id" || !slices.Equal(fields, []string{"owner", "address"}) {
		t.Errorf("PersonalData = %q, %q", subject, fields)
	}
	if id, err := agg.CommandID(&bankv1.WithdrawMoney{Account: "a9"}); err != nil || id != "a9" {
		t.Errorf("CommandID = %q, %v", id, err)
	}
	if _, err := agg.CommandID(nil); err == nil {
		t.Error("CommandID(nil) succeeded")
	}
	if agg.StateID(&bankv1.Account{AccountId: "x"}) != "x" {
		t.Error("StateID is wrong")
	}

	// The codec round-trips, deterministically, and never yields nil data.
	ev := &bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(3), Labels: map[string]string{"z": "1", "a": "2", "m": "3"}}
	data, err := agg.EncodeEvent(ev)
	if err != nil || data.Type != "bank.v1.MoneyDeposited" {
		t.Fatalf("EncodeEvent = %+v, %v", data, err)
	}
	for range 10 {
		again, _ := agg.EncodeEvent(ev)
		if string(again.Data) != string(data.Data) {
			t.Fatal("EncodeEvent is not deterministic")
		}
	}
	decoded, err := agg.DecodeEvent(es.Event{StreamID: "Account-a1", Version: 2, Type: data.Type, Data: data.Data})
	if err != nil || !proto.Equal(decoded, ev) {
		t.Fatalf("DecodeEvent = %v, %v", decoded, err)
	}
	empty, err := agg.EncodeEvent(&bankv1.MoneyDeposited{})
	if err != nil || empty.Data == nil {
		t.Errorf("EncodeEvent(empty) = %#v, %v; want non-nil data", empty.Data, err)
	}
	if _, err := agg.EncodeEvent((*bankv1.MoneyDeposited)(nil)); err == nil {
		t.Error("EncodeEvent of a nil message succeeded")
	}

	_, err = agg.DecodeEvent(es.Event{StreamID: "Account-a1", Version: 3, Type: "bank.v1.CardIssued"})
	if want := `decode event 3 of stream "Account-a1": type "bank.v1.CardIssued" is not an event of aggregate bank.v1.Account`; err == nil || err.Error() != want {
		t.Errorf("DecodeEvent(unknown) error = %v, want %s", err, want)
	}
	_, err = agg.DecodeEvent(es.Event{StreamID: "Account-a1", Version: 4, Type: "bank.v1.MoneyDeposited", Data: []byte{0xff}})
	if err == nil || !strings.HasPrefix(err.Error(), `decode event 4 of stream "Account-a1" as bank.v1.MoneyDeposited: `) {
		t.Errorf("DecodeEvent(garbage) error = %v", err)
	}

	// Decide and Evolve route by type.
	state := agg.NewState()
	events, err := agg.Decide(context.Background(), state, &bankv1.OpenAccount{AccountId: "a1", Owner: "Ada"})
	if err != nil || len(events) != 1 {
		t.Fatalf("Decide = %v, %v", events, err)
	}
	if err := agg.Evolve(state, events[0]); err != nil || state.GetStatus() != bankv1.Account_STATUS_OPEN {
		t.Fatalf("Evolve: %v, state %v", err, state)
	}
}

// summary implements the AccountSummary projector.
type summary struct {
	balance map[string]int64
	cards   map[string]int32
	seen    []string
}

func (s *summary) ProjectAccountOpened(_ context.Context, e *bankv1.AccountOpened, rec es.Event) error {
	s.balance[e.GetAccountId()] = 0
	s.seen = append(s.seen, rec.StreamID)
	return nil
}

func (s *summary) ProjectMoneyDeposited(_ context.Context, e *bankv1.MoneyDeposited, _ es.Event) error {
	s.balance[e.GetAccountId()] += e.GetAmount().GetUnits()
	return nil
}

func (s *summary) ProjectMoneyWithdrawn(_ context.Context, e *bankv1.MoneyWithdrawn, _ es.Event) error {
	s.balance[e.GetAccountId()] -= e.GetAmount().GetUnits()
	return nil
}

func (s *summary) ProjectCardIssued(_ context.Context, e *bankv1.CardIssued, _ es.Event) error {
	s.cards[e.GetAccountId()]++
	return nil
}

func (s *summary) ProjectCardBlocked(context.Context, *bankv1.CardBlocked, es.Event) error {
	return nil
}

func record(t *testing.T, stream string, version int64, m proto.Message) es.Event {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return es.Event{StreamID: stream, Version: version, Type: string(m.ProtoReflect().Descriptor().FullName()), Data: data}
}

func TestProjection_RoutesTypedEventsAndSkipsOthers(t *testing.T) {
	s := &summary{balance: map[string]int64{}, cards: map[string]int32{}}
	p := reportingv1.NewAccountSummaryProjection(s)
	if p.Name() != "account-summary" || len(p.EventTypes()) != 5 {
		t.Fatalf("Name = %q, EventTypes = %q", p.Name(), p.EventTypes())
	}
	log := []es.Event{
		record(t, "Account-a1", 1, opened("a1")),
		record(t, "Account-a1", 2, &bankv1.MoneyDeposited{AccountId: "a1", Amount: eur(10)}),
		record(t, "Account-a1", 3, &bankv1.FundsDeposited{AccountId: "a1", Cents: 99}), // not consumed
		record(t, "card-c1", 1, &bankv1.CardIssued{CardId: "c1", AccountId: "a1"}),
		record(t, "Account-a1", 4, &bankv1.MoneyWithdrawn{AccountId: "a1", Amount: eur(4)}),
	}
	for _, rec := range log {
		if err := p.Handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if s.balance["a1"] != 6 || s.cards["a1"] != 1 || !slices.Equal(s.seen, []string{"Account-a1"}) {
		t.Errorf("read model = %v %v %v", s.balance, s.cards, s.seen)
	}
	bad := es.Event{StreamID: "Account-a1", Version: 9, Type: "bank.v1.MoneyDeposited", Data: []byte{0xff}}
	if err := p.Handle(context.Background(), bad); err == nil {
		t.Error("Handle accepted garbage")
	}
}

type welcome struct{}

func (welcome) HandleAccountOpened(_ context.Context, state *reportingv1.Welcome, e *bankv1.AccountOpened, _ es.Event) ([]proto.Message, error) {
	state.AccountId, state.Opened = e.GetAccountId(), true
	return nil, nil
}

func (welcome) HandleCardIssued(_ context.Context, state *reportingv1.Welcome, e *bankv1.CardIssued, _ es.Event) ([]proto.Message, error) {
	if state.GetCardIssued() {
		return nil, nil
	}
	state.CardIssued = true
	return []proto.Message{&reportingv1.SendLetter{AccountId: e.GetAccountId()}}, nil
}

func TestProcessManager_CorrelatesAndHandles(t *testing.T) {
	pm := reportingv1.NewWelcomeProcessManager(welcome{})
	state := pm.NewState()
	var sent []proto.Message
	for _, rec := range []es.Event{
		record(t, "Account-a1", 1, opened("a1")),
		record(t, "Account-a1", 2, &bankv1.MoneyDeposited{AccountId: "a1"}),
		record(t, "card-c1", 1, &bankv1.CardIssued{CardId: "c1", AccountId: "a1"}),
	} {
		event, id, ok, err := pm.Correlate(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		if id != "a1" {
			t.Fatalf("correlation ID = %q", id)
		}
		cmds, err := pm.Handle(context.Background(), state, event, rec)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, cmds...)
	}
	if len(sent) != 1 || !proto.Equal(sent[0], &reportingv1.SendLetter{AccountId: "a1"}) {
		t.Errorf("sent %v", sent)
	}
	if _, _, ok, err := pm.Correlate(record(t, "card-c2", 1, &bankv1.CardIssued{CardId: "c2"})); !ok || err == nil || !strings.Contains(err.Error(), "empty account_id") {
		t.Errorf("Correlate of an uncorrelated event = %v, %v", ok, err)
	}
}

// typeAgg implements the aggregate whose names clash with Go keywords and
// with esgen's own names.
type typeAgg struct{}

func (typeAgg) DecideGo(_ context.Context, _ *_type.Type, cmd *_type.Go) ([]_type.TypeEvent_, error) {
	return []_type.TypeEvent_{&_type.Default{Func: cmd.GetFunc(), Range: cmd.GetRange(), IsTypeEvent: true}}, nil
}

func (typeAgg) EvolveDefault(state *_type.Type, e *_type.Default) error {
	state.Func, state.Range = e.GetFunc(), e.GetRange()
	return nil
}

var _ _type.TypeDecider_ = typeAgg{}

func TestClash_KeywordsAndTakenNames(t *testing.T) {
	_ = _type.TypeEvent{Note: "the user's own message keeps its name"}
	_type.NewTypeTest(t, typeAgg{}, typeAgg{}).
		When(&_type.Go{Func: "f", Range: 3}).
		Then(&_type.Default{Func: "f", Range: 3, IsTypeEvent: true}).
		ThenState(&_type.Type{Func: "f", Range: 3})
	empty := _type.NewEmptyAggregate(nil, nil)
	if _, err := empty.EncodeEvent(nil); err == nil {
		t.Error("an aggregate without events encoded one")
	}
	if empty.StreamName("x") != "Empty-x" {
		t.Error("Empty stream name")
	}
}

type counter struct{}

func (counter) DecideIncrement(_ context.Context, _ *legacyv1.Counter, cmd *legacyv1.Increment) ([]legacyv1.CounterEvent, error) {
	return []legacyv1.CounterEvent{&legacyv1.Incremented{Name: cmd.Name, By: proto.Int32(cmd.GetBy())}}, nil
}

func (counter) EvolveIncremented(state *legacyv1.Counter, e *legacyv1.Incremented) error {
	state.Name = e.Name
	state.Value = proto.Int32(state.GetValue() + e.GetBy())
	return nil
}

func TestLegacy_Proto2(t *testing.T) {
	legacyv1.NewCounterTest(t, counter{}, counter{}).
		When(&legacyv1.Increment{Name: proto.String("c")}).
		Then(&legacyv1.Incremented{Name: proto.String("c"), By: proto.Int32(1)}).
		ThenState(&legacyv1.Counter{Name: proto.String("c"), Value: proto.Int32(11)})
}

func TestNestedEvent(t *testing.T) {
	s := bankv1.NewAccountTest(t, account{}, account{}).
		Given(opened("a1"), &bankv1.Freeze_Frozen{AccountId: "a1", Reason: "fraud"}).
		When(&bankv1.DepositMoney{AccountId: "a1", Amount: eur(1)}).
		ThenError(nil)
	if s.State().GetStatus() != bankv1.Account_STATUS_CLOSED {
		t.Errorf("status = %v", s.State().GetStatus())
	}
	if bankv1.Freeze_FrozenEventType != "bank.v1.Freeze.Frozen" {
		t.Errorf("nested event type = %q", bankv1.Freeze_FrozenEventType)
	}
}

type ticket struct{}

func (ticket) DecideOpenTicket(_ context.Context, _ *editionsv1.Ticket, cmd *editionsv1.OpenTicket) ([]editionsv1.TicketEvent, error) {
	return []editionsv1.TicketEvent{&editionsv1.TicketOpened{TicketId: proto.String(cmd.GetTicketId())}}, nil
}

func (ticket) EvolveTicketOpened(state *editionsv1.Ticket, e *editionsv1.TicketOpened) error {
	state.TicketId = proto.String(e.GetTicketId())
	state.Replies = 1
	return nil
}

func TestEditions(t *testing.T) {
	editionsv1.NewTicketTest(t, ticket{}, ticket{}).
		When(&editionsv1.OpenTicket{TicketId: proto.String("t1")}).
		Then(&editionsv1.TicketOpened{TicketId: proto.String("t1")}).
		ThenState(&editionsv1.Ticket{TicketId: proto.String("t1"), Replies: 1})
	editionsv1.NewTicketTest(t, ticket{}, ticket{}).When(&editionsv1.OpenTicket{}).ThenError(nil)
}
