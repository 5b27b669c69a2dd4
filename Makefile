# Thin wrapper over CMake so the README's two commands are one line each.
#   make run    install what is missing, build, start the server
#   make test   install what is missing, build, run every test (also under
#               ASan + UBSan), check formatting
JOBS ?= $(shell nproc)
DATA_DIR ?= $(CURDIR)/skuld-data
LISTEN ?= 127.0.0.1:7878

.PHONY: all deps build build-sanitize run test test-release test-sanitize \
	format format-check bench clean

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

test: format-check test-release test-sanitize

test-release: build
	ctest --test-dir build --output-on-failure

test-sanitize: build-sanitize
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir build-sanitize --output-on-failure

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(SOURCES)

format-check: deps
	@clang-format --dry-run -Werror $(SOURCES) && echo "format: all $(words $(SOURCES)) files clean"

bench: build
	build/bench/skuld-microbench

clean:
	rm -rf build build-sanitize
