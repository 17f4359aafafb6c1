# Two commands do everything on a fresh machine:
#   make demo   - create the environment, install, run the embedded default job
#   make test   - create the environment, install, run the test suite
# Both are idempotent: the environment is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch that this project is developed against (see README, "Set-up").
TORCH_SPEC ?= torch==2.13.0
OPENCV_SAMPLES := /usr/share/doc/opencv-doc/examples/data/left01.jpg

.PHONY: demo test env test-data clean

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[runtime,export,dev]'
	@touch $(STAMP)

# OpenCV's sample chessboard images (Debian package opencv-doc) for the calibration tests.
# Tests that need them skip cleanly when they cannot be installed (no root, no apt).
test-data:
	@if [ ! -f $(OPENCV_SAMPLES) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q opencv-doc >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q opencv-doc >/dev/null 2>&1)) || \
		echo "note: could not install opencv-doc; the tests that use its images will be skipped"; \
	fi
	@if [ -f $(OPENCV_SAMPLES).gz ] && [ ! -f $(OPENCV_SAMPLES) ]; then gunzip -k $(OPENCV_SAMPLES).gz || true; fi

demo: $(STAMP)
	$(VENV)/bin/holevision demo

test: $(STAMP) test-data
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# The default edge model from scratch on synthetic parts (CPU, about an hour): teacher -> nano student.
.PHONY: default-model
default-model: $(STAMP)
	nice -n 5 export/scripts/make_default_model.sh runs/default_model
