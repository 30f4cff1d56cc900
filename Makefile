# berth: see README.md. Every target that needs Debian packages installs
# them through hack/deps.sh, which does so only when they are missing.
GO        ?= go
BIN       := bin/berth
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Packages of pure logic, run again under the race detector.
PURE_PKGS := ./manifest/... ./reconcile/... ./engine/network/ipam/... ./internal/rootid/... ./internal/progress/...
# Root tests share the machine's two cores; they are not CPU bound, but many
# parallel namespace and mount operations serialise in the kernel anyway.
TEST_FLAGS ?= -count=1 -timeout 25m

export CGO_ENABLED := 0

.PHONY: all build deps test test-short demo bench lint fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/berth

deps:
	@hack/deps.sh test

test: deps build
	$(GO) vet ./...
	BERTH_BINARY=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) ./...
	CGO_ENABLED=1 $(GO) test -race -timeout 10m $(PURE_PKGS)

# Unit tests only: no root, no daemon, no network namespaces.
test-short:
	$(GO) test -short ./...

# A fresh machine needs only busybox-static for the demo, not the test
# tools; it installs while berth compiles.
demo:
	@hack/deps.sh demo & deps=$$!; $(MAKE) --no-print-directory build; built=$$?; wait $$deps && exit $$built
	@samples/counter/demo.sh

bench: build
	@hack/deps.sh bench
	@hack/bench.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Fuzz each target for FUZZTIME (default 30s); crashers land in testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	@hack/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
