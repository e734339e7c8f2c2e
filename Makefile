# The two set-up commands of the README: `make train` (the main job) and `make test`. Each creates .venv and installs
# the project into it on first use (and again when setup.py or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
STAMP := $(VENV)/.installed

.PHONY: install train demo test test-docker lint conformance benchmark clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Local self-play training with the embedded defaults (10 minutes; no AWS account, no GPU): writes runs/<name>/.
train: $(STAMP)
	$(BIN)/battlesnake-rl train $(ARGS)

demo: $(STAMP)
	$(BIN)/battlesnake-rl demo

lint: $(STAMP)
	$(BIN)/ruff check .

# The official traces and CLI exports live beside the project (../shared); CI must have them.
conformance: $(STAMP)
	@if [ -d "$(SHARED)/traces" ]; then \
		$(BIN)/battlesnake-rl conformance $(SHARED)/traces $(SHARED)/api-samples; \
	elif [ -n "$$CI" ]; then \
		echo "conformance: $(SHARED)/traces is missing (set SHARED=...)"; exit 1; \
	else \
		echo "conformance: skipped, no $(SHARED)/traces (set SHARED=path/to/shared)"; \
	fi

# Under CI the Docker stage runs first, so that pytest's summary is the last line of the run.
test: lint conformance
	@if [ -n "$$CI" ] || [ "$$DOCKER_TESTS" = 1 ]; then \
		$(MAKE) test-docker; \
	else \
		echo "test-docker: skipped (runs when CI is set or DOCKER_TESTS=1)"; \
	fi
	$(BIN)/python -m pytest -q

# The training image and a real SageMaker SDK local-mode job (2 hosts) in it; installs and starts Docker when missing
# (needs root there). See docker/README.md.
test-docker: $(STAMP)
	PYTHON=$(BIN)/python docker/test_docker.sh

benchmark: $(STAMP)
	$(BIN)/battlesnake-rl benchmark

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .ruff_cache
