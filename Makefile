# The two set-up commands of dsv4 (README): `make run` and `make test`. Both install missing Debian
# packages first (scripts/install-deps.sh does nothing when they are present), then build with CMake presets.
.PHONY: all deps build test run clean

PRESET ?= default
BUILD_DIR := build
RUN_MODEL ?= models/dsv4-tiny
RUN_PROMPT ?= In the beginning God created

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

test: build
	@ctest --preset default

run: build
	@$(BUILD_DIR)/dsv4 run -m $(RUN_MODEL) -p "$(RUN_PROMPT)" -n 80 --temp 0.7 --seed 1

clean:
	rm -rf $(BUILD_DIR)
