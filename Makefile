# make demo | make test: each creates or refreshes .venv, installs the project into it, and runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# The packed environment for YARN (see env-archive below); make test-yarn submits it.
ENV_ARCHIVE := packed/spark_n2v-$(VERSION)-env.tar.gz

.PHONY: demo test test-yarn jars dist env-archive bench bench-walk bench-cluster bench-train bench-update bench-scale check-env clean

demo: check-env $(STAMP)
	$(BIN)/python -m spark_n2v.demo out/demo

# Airflow (for the example DAG's test) has its own virtualenv: it pins libraries Spark's side
# does not want, and in production it runs on other machines than the Spark jobs.
AIRFLOW_STAMP := .venv-airflow/.installed-stamp
# The JVM libraries the tests start their services with (Hadoop's mini HDFS and YARN, S3A, an S3
# server), from Maven Central into .jars/ (tests/jvm/jars.py: Python only, checked by SHA-1).
JARS_STAMP := .jars/.installed-stamp

test: check-env $(STAMP) $(AIRFLOW_STAMP) $(JARS_STAMP)
	$(BIN)/python -m pytest -q

# spark-submit to Hadoop's mini YARN, client and cluster deploy modes, with the packed environment
# (tests/test_yarn.py: minutes of YARN, so apart from `make test`; .ci/run runs both)
test-yarn: check-env $(STAMP) $(JARS_STAMP) $(ENV_ARCHIVE)
	$(BIN)/python -m pytest -q -m yarn tests/test_yarn.py

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

DIST_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

# build/ is setuptools' scratch: removed first, so that no module from an older layout is shipped.
dist: check-env
	rm -rf $(DIST) build && mkdir -p $(DIST)
	$(DIST_PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	cp $(DIST)/spark_n2v-$(VERSION)-py3-none-any.whl $(DIST)/spark_n2v-$(VERSION).zip
	@echo "built $(DIST)/spark_n2v-$(VERSION)-py3-none-any.whl and $(DIST)/spark_n2v-$(VERSION).zip (--py-files)"

# The project and its dependencies as one archive for nodes without them (spark-submit --archives
# ENV#env --conf spark.pyspark.python=./env/bin/python): the wheel installed into a fresh virtualenv
# (venv-pack refuses editable installs) made by .venv's interpreter, with its dependencies and the
# redis extra, but not pyspark (the cluster has Spark), at the versions .venv has (the same
# numerics as local runs), packed by venv-pack (a test extra). Its python links to this machine's interpreter: the nodes need the same Python at the
# same path (docs/cluster.md). pip is told not to warn that the wheel's pyspark is missing: on purpose.
PACK := packed/build

env-archive: $(ENV_ARCHIVE)

$(ENV_ARCHIVE): $(STAMP) Makefile $(shell find spark_n2v -type d -o -name '*.py' -o -name '*.csv' -o -name '*.properties')
	rm -rf $(PACK) build && mkdir -p $(PACK)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(PACK) .
	"$$(readlink -f $(BIN)/python)" -m venv $(PACK)/env
	$(PACK)/env/bin/python -m pip install --quiet --no-deps $(PACK)/spark_n2v-$(VERSION)-py3-none-any.whl
	$(PACK)/env/bin/python -c 'import importlib.metadata as m; print("\n".join(r.split(";")[0] if "extra ==" in r else r for r in m.requires("spark-n2v") if not r.startswith("pyspark") and ("extra ==" not in r or "extra == \"redis\"" in r)))' > $(PACK)/requirements.txt
	$(BIN)/python -m pip freeze --exclude-editable | grep -v ' @ ' > $(PACK)/constraints.txt
	$(PACK)/env/bin/python -m pip install --quiet --no-warn-conflicts -r $(PACK)/requirements.txt -c $(PACK)/constraints.txt
	$(BIN)/venv-pack --quiet --prefix $(PACK)/env --output $@.part --format tar.gz --force
	mv $@.part $@
	rm -rf $(PACK)
	@echo "built $@ (--archives $@#env --conf spark.pyspark.python=./env/bin/python)"

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
	rm -rf $(VENV) .venv-peers .venv-airflow .jars out dist packed .pytest_cache build *.egg-info
