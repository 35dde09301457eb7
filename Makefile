# Shoal: the front door. Every target calls go (or a script under e2e/) directly.
GO        ?= go
BIN       := bin/shoal
TESTAPP   := bin/shoal-testapp
TESTIMAGE := bin/shoal-testapp.oci.tar
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/shoal-dev/shoal/version.Version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# Tests that start real agents take a while on two cores with -race.
TEST_TIMEOUT ?= 20m

.PHONY: all build testimage test unit e2e chaos bench demo demo-stop lab lab-stop lint proto proto-check fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/shoal
	CGO_ENABLED=0 $(GO) build -o $(TESTAPP) ./cmd/shoal-testapp

# An OCI image archive of shoal-testapp for the containerd runtime, without a
# registry: `ctr -n NS image import` it to get localhost/shoal-testapp:latest.
testimage:
	CGO_ENABLED=0 $(GO) build -o $(TESTAPP) ./cmd/shoal-testapp
	$(GO) run ./internal/ociimage/mkimage -name localhost/shoal-testapp:latest -o $(TESTIMAGE) $(TESTAPP)=/shoal-testapp

# make test: unit tests, in-process clusters and the e2e suite, all with -race.
test:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

# Unit and in-process tests only (no agent processes).
unit:
	$(GO) test -race -short -timeout $(TEST_TIMEOUT) ./...

e2e:
	$(GO) test -race -timeout $(TEST_TIMEOUT) -v ./e2e/...

# Longer chaos runs: more leader kills than the default suite.
chaos:
	SHOAL_CHAOS_KILLS=$${SHOAL_CHAOS_KILLS:-20} $(GO) test -race -timeout 60m -v -run 'Chaos|Linearizable' ./e2e/...

# Benchmarks print ratio= against a reference run side by side (see docs/bench.md):
# the store against etcd, placement against the store, pod start against fork+exec.
bench: build
	bash e2e/bench/all.sh

# Fuzz every decoder of outside input for a short while each.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./object/manifest
	$(GO) test -run '^$$' -fuzz FuzzDecodeMeta -fuzztime $(FUZZTIME) ./gossip
	$(GO) test -run '^$$' -fuzz FuzzRestore -fuzztime $(FUZZTIME) ./consensus/state
	$(GO) test -run '^$$' -fuzz FuzzServeDNS -fuzztime $(FUZZTIME) ./dns
	$(GO) test -run '^$$' -fuzz FuzzParseWeights -fuzztime $(FUZZTIME) ./object/manifest
	$(GO) test -run '^$$' -fuzz FuzzParseRoutes -fuzztime $(FUZZTIME) ./object/manifest
	$(GO) test -run '^$$' -fuzz FuzzParseResolvConf -fuzztime $(FUZZTIME) ./agent/kubelet
	$(GO) test -run '^$$' -fuzz FuzzReconcile -fuzztime $(FUZZTIME) ./agent/controller/hpa

demo: build
	bash examples/demo.sh

demo-stop:
	bash examples/demo.sh stop

# The multi-VM lab on one machine: three agents on containerd, each in a
# network namespace on one bridge (root; see docs/lab.md).
lab: build testimage
	bash examples/lab.sh

lab-stop:
	bash examples/lab.sh stop

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

proto:
	@test -x $(GOBIN)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(GOBIN)/protoc-gen-go-grpc || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(GOBIN):$$PATH protoc -I proto \
		--go_out=proto/shoalpb --go_opt=paths=source_relative --go_opt=Mshoal/v1/shoal.proto=github.com/shoal-dev/shoal/proto/shoalpb \
		--go-grpc_out=proto/shoalpb --go-grpc_opt=paths=source_relative --go-grpc_opt=Mshoal/v1/shoal.proto=github.com/shoal-dev/shoal/proto/shoalpb \
		shoal/v1/shoal.proto
	mv proto/shoalpb/shoal/v1/*.go proto/shoalpb/ && rm -rf proto/shoalpb/shoal

# CI: the generated code must match the .proto.
proto-check: proto
	git diff --exit-code -- proto/shoalpb

clean:
	rm -rf bin
