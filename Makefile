# hwnas — `make demo` and `make test` each work from nothing on a fresh machine.
# TORCH_SPEC pins the CPU wheel; on a GPU machine: make test TORCH_SPEC='torch==2.13.0 --index-url ...'
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= tvm,test,ray,dashboard,tensorboard,browser,detection
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-run
PYTEST_ARGS ?=
SHARED ?= ../shared/datasets
CPU_STORES ?= build/assets-cpu
DIGITS_OPTS := --space-opt resolution=32 --space-opt width=0.35 --space-opt in_channels=1 --space-opt num_classes=10

.PHONY: install lint test test-fast chromium demo bench assets assets-cpu kernel-asset wheel clean gpu-check

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# ruff, then the import contracts (the floors of hwnas: tools/import_contracts.py)
lint: $(STAMP)
	$(PY) -m ruff check hwnas tests bench tools
	$(PY) tools/import_contracts.py

test: lint chromium
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The dashboard's browser tests (marked browser) drive Debian's chromium, never a downloaded browser.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
		|| echo "make: could not install chromium with apt-get; the browser tests will be skipped"; \
	else echo "make: no chromium and not root with apt-get; the dashboard's browser tests will be skipped"; fi

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m hwnas.demo --out $(DEMO_DIR)

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# Shipped assets (hwnas/assets/data) from the shared datasets; CI never needs this.
assets: $(STAMP)
	$(PY) -m hwnas.assets.build --shared $(SHARED)

# The reference CPU tables are measurements: run on a quiet machine (resumable).
assets-cpu: $(STAMP)
	mkdir -p $(CPU_STORES)
	$(VENV)/bin/hwnas profile --space mbv2 --device cpu --backend onnxruntime --threads 1 --store $(CPU_STORES)/mbv2.sqlite
	$(VENV)/bin/hwnas profile --space mbv2 $(DIGITS_OPTS) --device cpu --backend onnxruntime --threads 1 \
		--networks 40 --store $(CPU_STORES)/mbv2-digits.sqlite
	$(PY) -m hwnas.assets.build --cpu-only --cpu-store mbv2-cpu-ort=$(CPU_STORES)/mbv2.sqlite \
		--cpu-store mbv2-digits-cpu-ort=$(CPU_STORES)/mbv2-digits.sqlite

# The shipped kernel predictor (asset:kernel-cpu-ort) is a measurement too: run on a quiet machine of the
# test suite's class (2-core CPU, ONNX Runtime CPU, 1 thread). Resumable; prints each phase's wall time and
# writes the provenance (fingerprint, versions, job options, held-out figures, load average, date).
KERNEL_ASSET_WORK ?= build/kernel-asset
KERNEL_ASSET_OPTS ?=
kernel-asset: $(STAMP)
	$(PY) -m hwnas.assets.kernel_asset --work $(KERNEL_ASSET_WORK) $(KERNEL_ASSET_OPTS)

wheel: $(STAMP)
	$(PIP) wheel -q --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build *.egg-info

# On a CUDA machine: CUDA builds, the gpu tests, a CUDA profile of mbv2, the cost models, one JSON
# (bench/results/gpu_check.json). GPU_TORCH_SPEC: the CUDA torch build (PyPI's Linux wheel is one).
GPU_TORCH_SPEC ?= torch==2.13.0
gpu-check: $(STAMP)
	$(PIP) install -q $(GPU_TORCH_SPEC)
	$(PIP) install -q -e ".[gpu,test]"
	# onnxruntime and onnxruntime-gpu share one module folder: keep only the GPU build
	$(PIP) uninstall -q -y onnxruntime onnxruntime-gpu
	$(PIP) install -q "onnxruntime-gpu>=1.17"
	$(PY) bench/gpu_check.py --require-gpu
