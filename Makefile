# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
IMAGES_STAMP := $(VENV)/.installed-images

.PHONY: run test lint bench clean-venv

$(STAMP): pyproject.toml requirements.lock requirements-nodeps.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "gtw needs Python 3.11 (found %d.%d)" % sys.version_info[:2])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# `make test` only, never `make run`: the optional `diffusers` image provider's packages (torch's
# CPU wheel, diffusers, transformers) and open_clip's CLIP vocabulary, so its real tiny-pipeline
# test (tests/media/test_image_diffusers.py) runs, and fails by name without them.
$(IMAGES_STAMP): $(STAMP) requirements-images.lock requirements-images-nodeps.lock
	$(VENV)/bin/python -m pip install --quiet -r requirements-images.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-images-nodeps.lock
	touch $(IMAGES_STAMP)

run: $(STAMP)
	$(VENV)/bin/gtw up

test: $(STAMP) $(IMAGES_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/gtw bench turn --clients 1 && $(VENV)/bin/gtw bench turn --clients 8 && $(VENV)/bin/gtw bench turn --clients 50 && $(VENV)/bin/gtw bench mission && $(VENV)/bin/gtw bench stage && $(VENV)/bin/gtw bench fanout --clients 500 --layer pubsub

clean-venv:
	rm -rf $(VENV)
