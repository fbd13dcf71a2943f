# The front door. The real build is CMake + ctest underneath.
#   make        build build/crossdock
#   make test   install what is missing, build, run the suite twice:
#               the default build and an ASan+UBSan build (leak checking on)
#   make demo   install what is missing, build, run the demo
#   make bench  benchmarks (see bench/README.md): intake, end to end, micro,
#               dashboard, and on PostgreSQL with one and two nodes
#   make fuzz   libFuzzer targets for a bounded time
JOBS  ?= $(shell nproc)
CMAKE ?= cmake

.PHONY: all deps build build-asan test unit demo bench fuzz clean format

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

build-asan: deps
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DXD_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)

test: build build-asan
	cd build && ctest --output-on-failure -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

demo: build
	@sh scripts/demo.sh

bench: build
	@sh bench/run.sh
	@sh bench/e2e.sh
	@sh bench/micro.sh
	@sh bench/ui.sh
	@sh bench/pg.sh

fuzz: deps
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXD_FUZZ=ON >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS)
	@sh tests/fuzz/run.sh build-fuzz $(or $(FUZZ_SECONDS),60)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	rm -rf build build-asan build-fuzz
