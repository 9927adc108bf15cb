package memstore_test

import (
	"testing"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/memstore"
)

func TestConformance(t *testing.T) {
	estest.Run(t, estest.Harness{
		New: func(t *testing.T) es.Store { return memstore.New() },
	})
}

func TestConformance_SmallLimits(t *testing.T) {
	limits := es.Limits{MaxEvents: 50, MaxBytes: 3 << 20}
	estest.Run(t, estest.Harness{
		New:    func(t *testing.T) es.Store { return memstore.New(memstore.WithLimits(limits)) },
		Limits: limits,
		Short:  true,
	})
}
