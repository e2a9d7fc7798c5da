# The README's two commands: `make run` and `make test`. Everything else is a
# helper for them or an on-demand check.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
CMAKE_GEN := -G Ninja
BUILD := build
TEST_BUILD := build-test
TSAN_BUILD := build-tsan
FUZZ_BUILD := build-fuzz

.PHONY: all bootstrap build test run cert bench fuzz tsan soak clean format

all: build

bootstrap:
	@deploy/bootstrap.sh

# Release build: build/bin/wsgate, build/bin/wsgate-backend.
build: bootstrap
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DWSGATE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Debug build with ASan+UBSan, then every unit, integration and e2e test.
test: bootstrap
	@cmake -S . -B $(TEST_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DWSGATE_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600

cert:
	@deploy/dev-cert.sh $(BUILD)/dev-cert

# Backend and proxy in the foreground with a dev certificate; Ctrl-C stops both.
run: build cert
	@deploy/run-dev.sh $(BUILD)

bench: build
	@tests/bench/compare.sh $(BUILD)

# TSan build with clang: GCC 12 refuses the std::atomic_thread_fence in
# Asio's headers under -fsanitize=thread (-Werror=tsan). TSan does not model
# fences, so Asio's fenced blocks are switched off for this build.
# (-Wno-gnu-zero-variadic-macro-arguments: common/logging.hpp's ##__VA_ARGS__
# under clang -Wpedantic -Werror.)
TSAN_CXXFLAGS := -DBOOST_ASIO_DISABLE_FENCED_BLOCK -Wno-gnu-zero-variadic-macro-arguments
tsan: bootstrap
	@CXX=clang++ cmake -S . -B $(TSAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_TSAN=ON \
	  -DCMAKE_CXX_FLAGS="$(TSAN_CXXFLAGS)" >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	@cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L integration -j 1

# Soak with faults against the sanitizer build: SOAK_SECONDS (default 300).
soak: bootstrap
	@cmake -S . -B $(TEST_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DWSGATE_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) --target wsgate wsgate-backend
	@WSGATE_BIN=$(TEST_BUILD)/bin/wsgate WSGATE_BACKEND_BIN=$(TEST_BUILD)/bin/wsgate-backend \
	  /usr/bin/python3 tests/soak/soak.py --seconds $${SOAK_SECONDS:-300}

fuzz: bootstrap
	@CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_FUZZ=ON -DWSGATE_TESTS=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) --target wsgate_fuzzers -j $(JOBS)
	@tests/fuzz/run.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-60}

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
