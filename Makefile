# The two set-up commands of dsv4 (README): `make run` and `make test`. Both install missing Debian
# packages first (scripts/install-deps.sh does nothing when they are present), then build with CMake presets.
.PHONY: all deps build test run clean

PRESET ?= default
BUILD_DIR := build
RUN_MODEL ?= tests/data/golden/v4_tiny_fp8_mtp

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

test: build
	@ctest --preset default

run: build
	@$(BUILD_DIR)/dsv4 inspect -m $(RUN_MODEL)
	@$(BUILD_DIR)/dsv4 generate -m $(RUN_MODEL) --tokens $(RUN_MODEL)/input_ids.json -n 16

clean:
	rm -rf $(BUILD_DIR)
