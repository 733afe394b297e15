# Convenience targets; each is one of the commands in README.md.
PY ?= python3
MODE ?=

.PHONY: help install run test lab lowest colab-like browser strip badges lint clean

help:
	@echo "make run    - execute every notebook headless into build/<mode>/ (MODE=smoke|cpu|gpu)"
	@echo "make install - install requirements.txt (CPU build of torch when there is no NVIDIA GPU)"
	@echo "make test   - run the tests (they execute every notebook in smoke mode)"
	@echo "make lab    - open JupyterLab on the notebooks (installs only what is missing; works as root)"
	@echo "make lowest - install the lowest declared versions in /tmp and run the smoke tests"
	@echo "make colab-like - Colab's preinstalled versions + the setup cell's install in /tmp; notebook 02 and the smoke tests"
	@echo "make browser NB='05 06' - the notebooks in JupyterLab in a headless browser: Run All, sliders, reload"
	@echo "make strip  - remove outputs from notebooks before committing"
	@echo "make badges - point badges and setup cells at helpers.config.REPOSITORY"
	@echo "make lint   - ruff"

install:
	$(PY) -m helpers install

run:
	$(PY) -m helpers run $(if $(MODE),--mode $(MODE),)

test:
	$(PY) -m helpers test

lab:
	$(PY) -m helpers lab

lowest:
	scripts/check_lowest.sh

colab-like:
	scripts/check_colab_like.sh

browser:
	scripts/check_browser.sh --mode $(or $(MODE),smoke) $(NB)

strip:
	$(PY) -m helpers strip

badges:
	$(PY) -m helpers badges

lint:
	$(PY) -m ruff check .

clean:
	rm -rf build
