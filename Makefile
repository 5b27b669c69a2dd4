# Thin wrapper over CMake so the README's two commands are one line each.
#   make run    install what is missing, build, start the server
#   make test   install what is missing, build, run every test (also under
#               ASan + UBSan, and the integration suites with the server under
#               valgrind), check formatting, fuzz every decoder briefly
#   make fuzz   the libFuzzer targets (clang), FUZZ_SECONDS each (docs/FUZZING.md)
JOBS ?= $(shell nproc)
DATA_DIR ?= $(CURDIR)/skuld-data
LISTEN ?= 127.0.0.1:7878
# Seconds each of the five fuzz targets runs in `make fuzz` (and so in `make
# test`, whose other steps take about 10 minutes: 5 x 15 s plus the fuzz
# build keeps CI under 15). Longer runs: docs/FUZZING.md.
FUZZ_SECONDS ?= 15

.PHONY: all deps build build-sanitize build-fuzz run test test-release test-sanitize test-valgrind \
	fuzz format format-check bench clean

all: build

deps:
	@./.ci/install-deps

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKULD_WERROR=ON
	cmake --build build -j $(JOBS)

build-sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DSKULD_SANITIZE=ON -DSKULD_WERROR=ON
	cmake --build build-sanitize -j $(JOBS)

run: build
	exec build/server/skuld --listen $(LISTEN) --data-dir $(DATA_DIR)

test: format-check test-release test-sanitize test-valgrind fuzz

# The suites run side by side (every test has its own temporary directory and
# ports); each Criterion suite runs its own tests one at a time.
test-release: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

test-sanitize: build-sanitize
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir build-sanitize --output-on-failure -j $(JOBS)

# The integration suites again with the server under valgrind's memcheck
# (tests/server_harness.h: SKULD_TEST_VALGRIND); any report fails the test.
VALGRIND_SUITES = ^(test_server_basic|test_server_input|test_push_e2e|test_gateway_e2e|test_gateway_push_e2e)$$
test-valgrind: build
	SKULD_TEST_VALGRIND=1 ctest --test-dir build --output-on-failure -j $(JOBS) -R '$(VALGRIND_SUITES)'

# libFuzzer targets: clang with ASan + UBSan over every library they link;
# each runs on a scratch copy of tests/fuzz/corpus/<target> (tests/fuzz/run.sh).
build-fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKULD_FUZZ=ON \
		-DSKULD_TESTS=OFF -DSKULD_WERROR=ON
	cmake --build build-fuzz -j $(JOBS) --target skuld-fuzz

fuzz: build-fuzz
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(SOURCES)

format-check: deps
	@clang-format --dry-run -Werror $(SOURCES) && echo "format: all $(words $(SOURCES)) files clean"

bench: build
	build/bench/skuld-microbench

clean:
	rm -rf build build-sanitize build-fuzz
