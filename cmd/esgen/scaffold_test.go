package main

import "testing"

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"Order": "order", "BankAccount": "bank_account", "HTTPServer": "http_server", "OrderV2": "order_v2", "A": "a"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGoPackageName(t *testing.T) {
	for in, want := range map[string]string{"order.v1": "orderv1", "shop.order.v1": "orderv1", "shop.order": "order", "billing_api.v2beta1": "billingapiv2beta1", "order": "order"} {
		if got := goPackageName(in); got != want {
			t.Errorf("goPackageName(%q) = %q, want %q", in, got, want)
		}
	}
}
