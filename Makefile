# ssvp-slt: `make demo` runs the synthetic recipe end to end, `make test` runs the tests.
# Both create the virtual environment first if it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default; for CUDA set e.g. TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"
TORCH ?= torch==2.13.0
FAIRSEQ ?= ve-fairseq==0.12.3
HIERA ?= hiera-transformer==0.1.4
DEMO_DIR ?= work_dirs/synthetic_demo
EXPERIMENT_DIR ?= work_dirs/pretraining_experiment
COVERAGE_DIR ?= work_dirs/coverage_experiment
COMPARISON_DIR ?= work_dirs/encoder_comparison
PYTEST_ARGS ?=

.PHONY: install demo pretrain-experiment coverage-experiment encoder-comparison landmark-comparison test benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt $(TORCH)
	# fairseq without its torchaudio pin, which would pull a second torch (see setup.py)
	$(PY) -m pip install -q --no-deps -c constraints.txt $(FAIRSEQ)
	# FAIR's Hiera (SignHiera's architecture) without timm/torchvision (see setup.py)
	$(PY) -m pip install -q --no-deps -c constraints.txt $(HIERA)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	# WordNet 3.0 for METEOR, from Debian's packages (no PyPI package ships it); without it METEOR is reported as null
	$(PY) -m ssvp_slt.evaluation.wordnet install || echo "WARNING: WordNet not installed: METEOR will be reported as null (see docs/evaluation.md)"
	$(PY) -c "import ssvp_plugin, fairseq, torch, av; from ssvp_plugin.models.hiera_package import hiera; print('installed: fairseq', fairseq.__version__, 'torch', torch.__version__, 'av', av.__version__)"
	touch $@

demo: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/run_synthetic_recipe.sh $(DEMO_DIR)

# MAE pretraining vs training from scratch on synthetic data (README, "Pretraining"); about an hour on 2 cores
pretrain-experiment: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/run_pretraining_experiment.sh $(EXPERIMENT_DIR)

# whole-sentence windows vs one window on the demo's synthetic corpus (README, Results); ~45 min on 2 cores.
# STYLE=how2sign runs it on the How2Sign-like corpus (~2 h; the tiny model does not learn it at this scale)
coverage-experiment: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/run_coverage_experiment.sh $(COVERAGE_DIR)

# tiny ViT, tiny SignHiera and the two-stage recipe side by side on the How2Sign-like synthetic corpus (README, Results)
encoder-comparison: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/run_encoder_comparison.sh $(COMPARISON_DIR)

# landmarks next to video and their ensembles, after encoder-comparison (README, Results)
landmark-comparison: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/run_landmark_comparison.sh $(COMPARISON_DIR)

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

benchmark: install
	$(PY) scripts/benchmark_data.py

clean:
	rm -rf $(DEMO_DIR) $(EXPERIMENT_DIR) $(COVERAGE_DIR)
