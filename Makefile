# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs transferlab, fine-tunes the bundled model on the embedded data set
#   make test   runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# pip takes these two from the local disk here; uv/poetry would download several GB instead.
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[test,lite,hf,onnx,serve,stream,tracking]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/transferlab demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples tools

clean:
	rm -rf $(VENV) runs .pytest_cache
