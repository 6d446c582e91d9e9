# One command surface for humans and CI. `make help` lists the targets.
PYTHON ?= python
CARGO ?= cargo

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-21s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build and install the package (release, editable) with the test dependencies
	$(PYTHON) -m pip install -q -e '.[test]'

.PHONY: format
format: ## Format Rust and Python code
	$(CARGO) fmt --all
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

.PHONY: lint
lint: ## rustfmt, clippy (with and without the Python bindings), ruff, stub check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy.stubtest smoothmax._core

.PHONY: test-rs
test-rs: ## Rust kernel tests, every SIMD path this CPU supports (no Python needed)
	$(CARGO) test --profile ci --no-default-features --all-targets
	$(CARGO) test --profile ci --no-default-features --doc

.PHONY: test-py
test-py: ## Python tests (every SIMD path this CPU supports)
	$(PYTHON) -m pytest -q tests

.PHONY: test
test: build lint test-rs test-py ## Build, lint and run every test: the CI command
	@$(PYTHON) -c "import smoothmax._core as c; print('SIMD paths exercised:', ', '.join(c.supported_simd()))"

.PHONY: test-slow
test-slow: build ## The heavy checks: slow Python tests and the exhaustive float32 exp sweep
	SMOOTHMAX_SLOW=1 $(PYTHON) -m pytest -q tests
	$(CARGO) test --profile ci --no-default-features -- --ignored --nocapture

.PHONY: test-exhaustive
test-exhaustive: ## exp over all 2^32 float32 inputs on every SIMD path (~3 min on 2 cores)
	$(CARGO) test --profile ci --no-default-features exp_f32_exhaustive -- --ignored --nocapture

.PHONY: test-avx512-emulated
test-avx512-emulated: ## Rust kernel tests on an emulated AVX-512F CPU (Bochs, root for apt; ~30 min)
	tools/avx512_under_bochs.sh

.PHONY: bench
bench: ## The comparison table (add ARGS=--full for the full suite)
	$(PYTHON) -m smoothmax bench $(ARGS)

.PHONY: bench-rs
bench-rs: ## Rust kernel benchmarks per SIMD path (divan)
	$(CARGO) bench --no-default-features --bench kernels
