# The two commands a newcomer needs (README.md): `make run` and `make test`.
# Everything else is plain CMake: `cmake -S . -B build && cmake --build build`
# builds it all and registers every test with ctest. This file only adds the
# dependency install, warnings-as-errors, and the sanitizer pass.
SHELL := /bin/bash
JOBS := $(shell nproc 2>/dev/null || echo 2)

# Debian 12 packages: toolchain, the libraries of the design, Chromium, wrk,
# PostgreSQL (the tests run the store on a server of their own, and libpq).
# Node.js and npm (the tests' independent webhook verifiers, the benchmarks'
# peer) come from Debian only when the machine has none: these machines ship
# their own Node 20, which Debian's npm package would conflict with.
APT_PACKAGES := build-essential cmake pkg-config git ca-certificates curl chromium \
  libwebsockets-dev libcjson-dev libcurl4-openssl-dev libxml2-dev libpcre2-dev \
  libsqlite3-dev libcmocka-dev libssl-dev wrk postgresql libpq-dev

.PHONY: all deps node-deps build build-asan test test-fast test-asan run bench fuzz clean

all: build

# Installs only what is missing, so a second run costs a dpkg query.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "make: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make: run as root to install packages" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@if ! command -v npm >/dev/null; then \
	  echo "make: installing nodejs npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	fi

# The tests' Node packages (standardwebhooks, canonicalize, ajv, yaml), pinned
# by tests/node/package-lock.json.
node-deps: deps
	@[ -d tests/node/node_modules/standardwebhooks ] || \
	  (cd tests/node && npm ci --no-audit --no-fund --silent)

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTIER_WERROR=ON >/dev/null
	cmake --build build -j$(JOBS)

build-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPORTIER_WERROR=ON \
	  -DPORTIER_SANITIZE=ON >/dev/null
	cmake --build build-asan -j$(JOBS)

# Every test, then every test again under ASan+UBSan with leak detection.
test: test-fast test-asan

test-fast: build node-deps
	ctest --test-dir build --output-on-failure -j2

test-asan: build-asan node-deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j2

# The task API on 127.0.0.1:8080 with the sandbox portal on 127.0.0.1:8081 and
# a demo account; it prints the lines to paste (README.md). State: portier.db*.
run: build
	./build/portier serve --demo --db portier.db

# Benchmarks against Puppeteer (puppeteer-core from npm, on Debian's Chromium).
bench: build
	bench/run.sh cdp
	bench/run.sh claim 10
	bench/run.sh api
	bench/run.sh claims 40
	bench/run.sh trajectory 10
	bench/run.sh stalls 200
	PORTIER_LINT_RECORDINGS=10 ctest --test-dir build -R lint_against_fresh --timeout 1800 --output-on-failure

# libFuzzer on the parsers, FUZZ_SECONDS each (new crashes land in build-fuzz/).
FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v clang >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang)
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DPORTIER_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j$(JOBS) --target fuzz_sop fuzz_data fuzz_multipart fuzz_http
	for t in sop data multipart http; do \
	  mkdir -p build-fuzz/corpus-$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus-$$t/; \
	  (cd build-fuzz && ./tests/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 corpus-$$t) || exit 1; \
	done

clean:
	rm -rf build build-asan build-fuzz bench/node_modules bench/out tests/node/node_modules
