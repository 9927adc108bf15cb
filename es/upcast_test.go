package es_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// legacyAdded is an event type the app no longer declares: it stored the
// amount in cents as field 2. It upcasts to testagg.v1.Deposited.
const legacyAdded = "testagg.v1.MoneyAdded"

var legacyToDeposited = es.Upcaster{
	From: legacyAdded,
	To:   testaggv1.DepositedEventType,
	Upcast: func(e es.Event) (es.Event, error) {
		num, typ, n := protowire.ConsumeTag(e.Data)
		if n < 0 || num != 2 || typ != protowire.VarintType {
			return es.Event{}, protowire.ParseError(n)
		}
		cents, m := protowire.ConsumeVarint(e.Data[n:])
		if m < 0 {
			return es.Event{}, protowire.ParseError(m)
		}
		data, err := proto.Marshal(&testaggv1.Deposited{Amount: int64(cents)})
		e.Type, e.Data = testaggv1.DepositedEventType, data
		return e, err
	},
}

func legacyEvent(cents uint64) es.EventData {
	b := protowire.AppendTag(nil, 2, protowire.VarintType)
	return es.EventData{Type: legacyAdded, Data: protowire.AppendVarint(b, cents)}
}

func identity(e es.Event) (es.Event, error) { return e, nil }

func TestNewUpcasters_RejectsMalformedChainsNamingTheTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ups  []es.Upcaster
		want string
	}{
		{"cycle", []es.Upcaster{{From: "a.A", To: "a.B", Upcast: identity}, {From: "a.B", To: "a.A", Upcast: identity}}, "cycle: a.A -> a.B -> a.A"},
		{"self", []es.Upcaster{{From: "a.A", To: "a.A", Upcast: identity}}, "upcaster a.A -> a.A: From and To are the same type"},
		{"duplicate", []es.Upcaster{{From: "a.A", To: "a.B", Upcast: identity}, {From: "a.A", To: "a.C", Upcast: identity}}, "two upcasters from a.A"},
		{"nil func", []es.Upcaster{{From: "a.A", To: "a.B"}}, "upcaster a.A -> a.B: Upcast is nil"},
		{"missing type", []es.Upcaster{{To: "a.B", Upcast: identity}}, "From and To must both be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := es.NewUpcasters(tc.ups...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewUpcasters: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestUpcasters_ValidateFindsGapsAgainstCurrentTypes(t *testing.T) {
	u, err := es.NewUpcasters(es.Upcaster{From: "a.V1", To: "a.V2", Upcast: identity}, es.Upcaster{From: "a.V2", To: "a.V3", Upcast: identity})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Validate([]string{"a.V3"}); err != nil {
		t.Fatalf("complete chain: %v", err)
	}
	err = u.Validate([]string{"a.V4"})
	if err == nil || !strings.Contains(err.Error(), "upcaster chain a.V1 -> a.V2 -> a.V3 ends in a.V3, which is not a current event type") {
		t.Fatalf("chain ending in an unknown type: %v; want an error naming the chain", err)
	}
	// The repository checks chains against the aggregate at construction.
	_, err = es.NewRepository(memstore.New(), newAgg(), es.WithUpcasters(u))
	if err == nil || !strings.Contains(err.Error(), "ends in a.V3") {
		t.Fatalf("NewRepository with a gap: %v; want the gap named", err)
	}
}

func TestRepository_LoadsUpcastEvents(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	u, err := es.NewUpcasters(legacyToDeposited)
	if err != nil {
		t.Fatal(err)
	}
	r := newRepo(t, store, es.WithUpcasters(u))
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	if _, err := store.Append(ctx, "Account-a1", es.Exact(1), legacyEvent(250)); err != nil {
		t.Fatal(err)
	}
	state, version, err := r.Load(ctx, "a1")
	if err != nil || version != 2 || state.Balance != 250 || state.Deposits != 1 {
		t.Fatalf("Load = %v at %d (err %v); want the legacy event applied as a deposit of 250", state, version, err)
	}
}

func TestUpcastingStore_ReadsAndSubscriptionsSeeCurrentTypes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := memstore.New()
	u, err := es.NewUpcasters(legacyToDeposited)
	if err != nil {
		t.Fatal(err)
	}
	store := es.UpcastingStore(base, u)
	if _, err := store.Append(ctx, "Account-a1", es.NoStream, legacyEvent(7), es.EventData{Type: testaggv1.OpenedEventType, Data: []byte{}}); err != nil {
		t.Fatal(err)
	}
	for e, err := range store.ReadAll(ctx, es.Position{}, 1) {
		if err != nil || e.Type != testaggv1.DepositedEventType {
			t.Fatalf("ReadAll yielded %s (err %v); want the upcast type", e.Type, err)
		}
	}
	// A filter on the current type also selects stored events of the old one.
	for e, err := range store.Subscribe(ctx, es.Position{}, es.Filter{EventTypes: []string{testaggv1.DepositedEventType}}) {
		var d testaggv1.Deposited
		if err != nil || e.Type != testaggv1.DepositedEventType || proto.Unmarshal(e.Data, &d) != nil || d.Amount != 7 {
			t.Fatalf("Subscribe yielded %s %v (err %v); want the legacy event as Deposited{7}", e.Type, d.Amount, err)
		}
		break
	}
}
