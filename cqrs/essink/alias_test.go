package essink

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestSwapAlias_OneAtomicAliasesRequest(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	ctx := t.Context()
	for _, ix := range []string{"orders_v1", "orders_v2"} {
		if err := s.CreateIndex(ctx, ix, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SwapAlias(ctx, "orders", "", "orders_v1"); err != nil {
		t.Fatal(err)
	}
	tg.fake.ResetLog()
	if err := s.SwapAlias(ctx, "orders", "orders_v1", "orders_v2"); err != nil {
		t.Fatal(err)
	}
	reqs := tg.fake.Log()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/_aliases" {
		t.Fatalf("requests %+v, want one POST /_aliases", reqs)
	}
	var got, want any
	_ = json.Unmarshal([]byte(reqs[0].Body), &got)
	_ = json.Unmarshal([]byte(`{"actions":[
		{"remove":{"index":"orders_v1","alias":"orders","must_exist":true}},
		{"add":{"index":"orders_v2","alias":"orders","is_write_index":true}}]}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("aliases body:\n got %s\nwant %v", reqs[0].Body, want)
	}
}

func TestRebuild_BlueGreenBehindAnAlias(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg, WithRefresh("wait_for"))
		alias := tg.index("orders")
		v1, v2 := VersionedIndex(alias, 1), VersionedIndex(alias, 2)
		if v2 != alias+"_v2" {
			t.Fatalf("VersionedIndex = %q", v2)
		}
		mapping := []byte(`{"mappings":{"properties":{"status":{"type":"keyword"}}}}`)
		if err := s.CreateIndex(ctx, v1, mapping); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateIndex(ctx, v1, mapping); !errors.Is(err, ErrIndexExists) {
			t.Fatalf("creating %s twice: %v, want ErrIndexExists", v1, err)
		}
		if err := s.SwapAlias(ctx, alias, "", v1); err != nil {
			t.Fatal(err)
		}
		log := orderLog()
		// The live projection writes through the alias.
		if err := s.Apply(ctx, "orders", log[:3], orderProjection(alias)); err != nil {
			t.Fatal(err)
		}
		// The rebuild is another projection, writing the next index by name.
		if err := s.CreateIndex(ctx, v2, mapping); err != nil {
			t.Fatal(err)
		}
		rebuild := func(ctx context.Context, rec es.Event) error {
			if rec.Type == "OrderPaid" {
				return Index(ctx, v2, rec.StreamID, map[string]any{"order": rec.StreamID, "status": "PAID"})
			}
			return orderProjection(v2)(ctx, rec)
		}
		if err := s.Apply(ctx, "orders.v2", log[:3], rebuild); err != nil {
			t.Fatal(err)
		}
		if d := getDoc(t, tg.client, alias, "order-1"); d.Source["status"] != "paid" {
			t.Fatalf("before the swap the alias reads %+v, want v1's document", d)
		}
		if err := s.SwapAlias(ctx, alias, v1, v2); err != nil {
			t.Fatal(err)
		}
		if d := getDoc(t, tg.client, alias, "order-1"); d.Source["status"] != "PAID" {
			t.Fatalf("after the swap the alias reads %+v, want v2's document", d)
		}
		// A second swap from v1 finds the alias elsewhere and changes nothing.
		if err := s.SwapAlias(ctx, alias, v1, v2); err == nil {
			t.Fatal("swapping from an index the alias no longer points at succeeded")
		}
		if err := s.DropIndex(ctx, v1); err != nil {
			t.Fatal(err)
		}
		if err := s.DropIndex(ctx, v1); err != nil {
			t.Fatalf("dropping a missing index: %v", err)
		}
		if d := getDoc(t, tg.client, alias, "order-1"); d.Source["status"] != "PAID" {
			t.Fatalf("after dropping v1 the alias reads %+v", d)
		}
	})
}
