# make demo | make test: each creates or refreshes .venv, installs the project into it, and runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test jars dist bench bench-walk bench-cluster bench-train bench-update bench-scale check-env clean

demo: check-env $(STAMP)
	$(BIN)/python -m spark_n2v.demo out/demo

# Airflow (for the example DAG's test) has its own virtualenv: it pins libraries Spark's side
# does not want, and in production it runs on other machines than the Spark jobs.
AIRFLOW_STAMP := .venv-airflow/.installed-stamp
# The JVM libraries the tests start their storage services with (Hadoop's mini HDFS, S3A, an S3
# server), from Maven Central into .jars/ (tests/jvm/jars.py: Python only, checked by SHA-1).
JARS_STAMP := .jars/.installed-stamp

test: check-env $(STAMP) $(AIRFLOW_STAMP) $(JARS_STAMP)
	$(BIN)/python -m pytest -q

jars: $(JARS_STAMP)

$(JARS_STAMP): tests/jvm/jars.py
	$(PYTHON) tests/jvm/jars.py .jars
	touch $@

$(AIRFLOW_STAMP): tests/airflow-requirements.txt
	$(PYTHON) -m venv .venv-airflow
	.venv-airflow/bin/python -m pip install --quiet -r tests/airflow-requirements.txt
	touch $@

# What a cluster needs: the wheel (pip install on every node) and the same archive named .zip for
# spark-submit --py-files (a pure-Python wheel is a zip Python imports from). DIST picks the folder.
DIST ?= dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

DIST_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

# build/ is setuptools' scratch: removed first, so that no module from an older layout is shipped.
dist: check-env
	rm -rf $(DIST) build && mkdir -p $(DIST)
	$(DIST_PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	cp $(DIST)/spark_n2v-$(VERSION)-py3-none-any.whl $(DIST)/spark_n2v-$(VERSION).zip
	@echo "built $(DIST)/spark_n2v-$(VERSION)-py3-none-any.whl and $(DIST)/spark_n2v-$(VERSION).zip (--py-files)"

# The benchmarks beside their peers (PecanPy, gensim: in their own virtualenv, PecanPy pins
# numpy < 2). BENCH_ARGS passes options to bench/run.py, TRAIN_ARGS to bench/train.py, e.g.
# make bench-walk BENCH_ARGS="--only planted --peer-timeout 600"; CLUSTER_ARGS to bench/cluster.py, UPDATE_ARGS to bench/update.py. bench-scale (SCALE_ARGS to
# bench/scale.py) trains a model past MLlib's ceiling: ~60 GB of disk, not part of `make bench`.
bench: bench-walk bench-cluster bench-train bench-update

bench-walk: check-env $(STAMP) .venv-peers/.installed-stamp
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-cluster: check-env $(STAMP)
	$(BIN)/python bench/cluster.py $(CLUSTER_ARGS)

bench-train: check-env $(STAMP) .venv-peers/.installed-stamp
	$(BIN)/python bench/train.py $(TRAIN_ARGS)

bench-update: check-env $(STAMP) .venv-peers/.installed-stamp
	$(BIN)/python bench/update.py $(UPDATE_ARGS)

bench-scale: check-env $(STAMP) .venv-peers/.installed-stamp
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

.venv-peers/.installed-stamp: bench/peers/requirements.txt
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	touch $@

check-env:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed (found " + sys.version.split()[0] + "): install it and run make PYTHON=python3.X")'
	@java="$${JAVA_HOME:+$$JAVA_HOME/bin/}java"; \
	if ! command -v "$$java" >/dev/null 2>&1; then \
	  echo "Java 17 or newer is needed by Spark and was not found: install a JDK/JRE 17+ (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) and put java on PATH or set JAVA_HOME." >&2; exit 1; fi; \
	major=$$("$$java" -version 2>&1 | awk -F'"' '/version/ {print $$2; exit}' | awk -F. '{print ($$1 == 1 ? $$2 : $$1)}'); \
	if [ "$${major:-0}" -lt 17 ]; then \
	  echo "Java $$major found at $$(command -v $$java); Spark 4 needs Java 17 or newer: install it and set JAVA_HOME to it." >&2; exit 1; fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m spark_n2v.warmup  # the JVM class archive local runs start from (~1 min, once)
	touch $(STAMP)

clean:
	rm -rf $(VENV) .venv-peers .venv-airflow .jars out dist .pytest_cache build *.egg-info
