# The whole test suite: gofmt and vet, then every package's tests under the
# race detector. Postgres tests start a throwaway cluster from the installed
# server binaries (or use DATABASE_URL).
.PHONY: test vet bench

GO ?= go

test: vet
	$(GO) test -race -timeout 20m ./...

vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Benchmarks against a durable Postgres (fsync on); see docs/benchmarks.md.
bench:
	PGTEST_DURABLE=1 $(GO) test ./es/pgstore -run '^$$' -bench . -benchtime 3s -timeout 60m
