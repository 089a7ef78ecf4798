# vrrpkit — `make help` lists the targets.
#
# Tools the build needs beyond Go (protoc plugins, staticcheck) are installed
# with `go install` into .tools/bin, at the versions pinned below, so nothing
# depends on what happens to be on a developer's PATH.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

MODULE      := github.com/vrrpkit/vrrpkit
GO          ?= go
BIN_DIR     := bin
BINARIES    := supervisor vrrpd checkerd vrrpctl
TOOLS_BIN   := $(CURDIR)/.tools/bin
TOOLS_STAMP := $(CURDIR)/.tools/stamp

# Stamped into the binaries as main.version (ignored by a main without it).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# grpcnotrace (grpc-go's trace_notrace.go) leaves golang.org/x/net/trace out:
# grpc.EnableTracing is off anyway, and x/net/trace drags in html/template,
# whose reflect Method calls keep every exported method of every reachable
# type in the binary. vrrpd 12.4 -> 7.9 MB, supervisor 11.3 -> 8.7 MB; a Go
# binary's pages end up resident (init code and tables spread over it), so
# that is RSS/PSS saved per process too.
GO_TAGS ?= grpcnotrace

# Fuzz targets as pkgpath:FuzzName:budget. A target whose package does not
# define it yet is skipped, so the list can name targets before they exist.
# The budget is an execution count (about 8 s each here), not a duration: a
# duration-based -fuzztime races the coordinator's deadline against in-flight
# workers and fails with a bare "context deadline exceeded" and no crasher on a
# loaded machine (golang/go#75804, fixed only in Go 1.27; seen in our CI).
FUZZ_TARGETS ?= ./pkg/config:FuzzParse:60000x ./pkg/vrrp:FuzzParse:300000x ./pkg/vrrp:FuzzMachine:200000x
# Overrides every target's budget: `make fuzz FUZZTIME=5000000x` for a long
# pass (a duration such as 5m works too, with the race above).
FUZZTIME ?=
# Time spent minimizing each new corpus entry. Go's default (60s) made the
# 10s pass minimize at 0 execs/s most of the time instead of fuzzing; a
# crasher is still written out, unminimized, and can be minimized later with
# `go test -run=NONE -fuzz=... -fuzzminimizetime=1m`.
FUZZMINIMIZETIME ?= 0
# Fuzz workers; empty means Go's default (GOMAXPROCS). On a shared machine
# use `make fuzz FUZZPARALLEL=1`.
FUZZPARALLEL ?=

# Pinned tool versions. protoc-gen-go must match the google.golang.org/protobuf
# in go.mod, so it is read from there (lazily: only targets that use it pay).
PROTOC                     ?= protoc
PROTOC_GEN_GO_VERSION       = $(eval PROTOC_GEN_GO_VERSION := $$(shell $(GO) list -m -f '{{.Version}}' google.golang.org/protobuf))$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
STATICCHECK_VERSION        ?= v0.8.2

PROTO_DIR   := proto
PROTO_FILES := $(wildcard $(PROTO_DIR)/vrrpkit/v1/*.proto)
PROTO_OUT   := $(PROTO_DIR)/vrrpkitv1

.PHONY: help build test vet unit fuzz bench lint proto proto-deps install demo clean distclean

help:
	@echo 'make build      $(addprefix $(BIN_DIR)/,$(BINARIES)): static (CGO_ENABLED=0), -trimpath, -tags $(GO_TAGS)'
	@echo 'make test       go vet, go test -count=1, then a short fuzz pass per FUZZ_TARGETS'
	@echo 'make fuzz       only the fuzz pass (FUZZTIME=5000000x for a long one, FUZZPARALLEL=1 on a shared box)'
	@echo 'make bench      go benchmarks'
	@echo 'make lint       gofmt -l, go vet, staticcheck $(STATICCHECK_VERSION)'
	@echo 'make proto      regenerate $(PROTO_OUT) from $(PROTO_DIR)/vrrpkit/v1/*.proto'
	@echo 'make install    supervisor to $$(DESTDIR)/usr/sbin, vrrpctl to /usr/bin, vrrpd and checkerd to /usr/lib/vrrpkit, unit to /lib/systemd/system'
	@echo 'make demo       live failover, vrrpkit and keepalived, in network namespaces (root)'
	@echo 'make clean      remove bin/ (distclean: also .tools/)'

## build ----------------------------------------------------------------------

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(GO_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ $(addprefix ./cmd/,$(BINARIES))

## test -----------------------------------------------------------------------

# Integration tests that need root (namespaces, raw sockets) skip themselves
# when not root, so `make test` works for anyone.
test: vet unit
	@$(MAKE) --no-print-directory fuzz

vet:
	$(GO) vet ./...

# One package at a time (-p 1): the VM tests (pkg/lvs, pkg/vmlab, the LVS
# ones in cmd/vrrpd) each keep a CPU busy emulating a machine, and run
# beside cmd/vrrpd's timing tests they starve the peers' daemons: FRR's
# vrrpd, its loop late, took over before reading an advert already
# queued (CI, 2 CPUs). Inside cmd/vrrpd the VM tests run before the
# parallel labs (they are not parallel tests).
unit: vet
	$(GO) test -count=1 -p 1 ./...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg="$${t%%:*}"; rest="$${t#*:}"; name="$${rest%%:*}"; budget="$${rest#*:}"; \
	  override="$(FUZZTIME)"; budget="$${override:-$$budget}"; \
	  if ! grep -qs "^func $$name(" "$$pkg"/*_test.go; then \
	    echo "make fuzz: skip $$pkg $$name (not defined yet)"; continue; \
	  fi; \
	  echo "make fuzz: $$pkg $$name for $$budget"; \
	  $(GO) test -run=NONE -fuzz="^$$name\$$" -fuzztime="$$budget" \
	    -fuzzminimizetime=$(FUZZMINIMIZETIME) $(if $(FUZZPARALLEL),-parallel=$(FUZZPARALLEL)) "$$pkg"; \
	done

# Go benchmarks, then vrrpkit against keepalived side by side in one run
# (bench/*.sh; each skips itself with a reason when it cannot run here).
bench: build
	$(GO) test -run=NONE -bench=. -benchmem ./...
	@for s in bench/*.sh; do bash "$$s"; done

## lint -----------------------------------------------------------------------

lint: vet
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(call go-install,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))
	$(TOOLS_BIN)/staticcheck ./...

## proto ----------------------------------------------------------------------

# Generated code is committed: only someone changing a .proto runs this.
# Running it twice gives no diff (same protoc, same pinned plugins).
proto: proto-deps
	@[ -n '$(PROTOC_GEN_GO_VERSION)' ] || { echo 'make proto: google.golang.org/protobuf is not in go.mod (go get google.golang.org/protobuf@latest)' >&2; exit 1; }
	$(call go-install,protoc-gen-go,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION))
	$(call go-install,protoc-gen-go-grpc,google.golang.org/grpc/cmd/protoc-gen-go-grpc,$(PROTOC_GEN_GO_GRPC_VERSION))
	rm -f $(PROTO_OUT)/*.pb.go
	$(PROTOC) -I $(PROTO_DIR) \
	  --plugin=protoc-gen-go=$(TOOLS_BIN)/protoc-gen-go \
	  --plugin=protoc-gen-go-grpc=$(TOOLS_BIN)/protoc-gen-go-grpc \
	  --go_out=. --go_opt=module=$(MODULE) \
	  --go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
	  $(PROTO_FILES)

# protoc and the well-known types (google/protobuf/*.proto). On Debian those
# are protobuf-compiler and libprotobuf-dev (only a Recommends of the former).
proto-deps:
	@if command -v $(PROTOC) >/dev/null && [ -e /usr/include/google/protobuf/duration.proto ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  pkgs="protobuf-compiler libprotobuf-dev"; \
	  apt-get install -y --no-install-recommends $$pkgs || { apt-get update && apt-get install -y --no-install-recommends $$pkgs; }; \
	elif ! command -v $(PROTOC) >/dev/null; then \
	  echo "make proto: protoc not found; install protobuf-compiler and libprotobuf-dev (Debian) or set PROTOC=" >&2; exit 1; \
	fi

# $(call go-install,NAME,PACKAGE,VERSION): `go install PACKAGE@VERSION` into
# $(TOOLS_BIN) unless that version of NAME is already there.
define go-install
	@v='$(3)'; stamp='$(TOOLS_STAMP)/$(1)@'"$$v"; \
	if [ ! -x '$(TOOLS_BIN)/$(1)' ] || [ ! -e "$$stamp" ]; then \
	  echo "go install $(2)@$$v"; \
	  GOBIN='$(TOOLS_BIN)' $(GO) install '$(2)@'"$$v"; \
	  mkdir -p '$(TOOLS_STAMP)'; rm -f '$(TOOLS_STAMP)/$(1)@'*; touch "$$stamp"; \
	fi
endef

## install --------------------------------------------------------------------

# The daemon in /usr/sbin; vrrpctl in /usr/bin, on every user's PATH, since
# members of the supervisor's --status-group run it too (Debian's PATH for
# them has no sbin). vrrpd and checkerd are the supervisor's own binary,
# which it runs under those names (argv[0]; cmd/supervisor main): in
# /usr/lib/vrrpkit they are symlinks to it, there to run by hand (-h), not
# copies that could drift from it. The unit goes where Debian's packages put
# theirs. DESTDIR stages the tree for a package.
install: build
	install -d $(DESTDIR)/usr/sbin $(DESTDIR)/usr/bin $(DESTDIR)/usr/lib/vrrpkit $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BIN_DIR)/supervisor $(DESTDIR)/usr/sbin/
	install -m 0755 $(BIN_DIR)/vrrpctl $(DESTDIR)/usr/bin/
	ln -sfn ../../sbin/supervisor $(DESTDIR)/usr/lib/vrrpkit/vrrpd
	ln -sfn ../../sbin/supervisor $(DESTDIR)/usr/lib/vrrpkit/checkerd
	install -m 0644 deploy/systemd/vrrpkit.service $(DESTDIR)/lib/systemd/system/

## demo -----------------------------------------------------------------------

demo: build
	bash demo/failover.sh

## clean ----------------------------------------------------------------------

clean:
	rm -rf $(BIN_DIR)

distclean: clean
	rm -rf .tools
