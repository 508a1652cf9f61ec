# mlpipe: infrastructure-as-code kit for an ML pipeline platform.
# `make help` lists the targets. Every target installs what it needs on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

TOP    := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV   := $(TOP)/.venv
STAMP  := $(VENV)/.mlpipe-installed
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(TOP)/ansible/ansible.cfg
export PYTHONUNBUFFERED := 1

ROLE ?=
PYTEST_ARGS ?=
# test-unit's pytest-xdist workers: most unit tests wait on the real servers they start, so
# three overlap on two cores (581 s with three and the venvs compiled; 783 s with two before);
# the Slurm tests share one worker (tests/conftest.py ONE_WORKER)
UNIT_JOBS ?= 3


.PHONY: help wheel host-tools dlg-venv up down test test-setup setup-python setup-host test-unit test-roles test-e2e lint lint-yaml lint-ansible lint-python lint-types lint-shell lint-terraform lint-ci bench provision destroy venv clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# pip installs uv, uv the pinned tools (as the roles do on hosts: several times
# faster than pip). Nothing is compiled at install: Python compiles what is
# imported on first use and keeps it (these venvs are writable by their user).
UV_VERSION := 0.13.9
UV_INSTALL  = pip install -q --disable-pip-version-check --no-compile --upgrade pip uv==$(UV_VERSION)
# torch (mlpipe[torch], in [dev]: the PyTorch example model) is the CPU build, pinned
# torch==X+cpu in tests/constraints.txt: the index's plain torch is a multi-GB CUDA build and is
# never taken. It comes from TORCH_FIND_LINKS: a directory with the CPU wheel (default
# /opt/wheels when it holds one), else PyTorch's CPU wheel page.
TORCH_FIND_LINKS ?= $(if $(wildcard /opt/wheels/torch-*+cpu-*.whl),/opt/wheels,https://download.pytorch.org/whl/cpu/torch/)
# --compile-bytecode: the venvs' modules compiled once, at install. uv leaves them
# uncompiled, and where PYTHONDONTWRITEBYTECODE is set (this machine) no process writes
# them either: every MLflow server, CLI and DALiuGE manager the tests start compiled
# mlflow, pandas and scikit-learn from source again (import of those three: 7 s of CPU
# against 3 s compiled).
$(STAMP): tests/requirements.txt tests/constraints.txt tasks_py/pyproject.toml
	@echo "venv: installing pinned tools and the mlpipe package into $(VENV) (first use only)"
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/$(UV_INSTALL)
	@$(VENV)/bin/uv pip install -q --system-certs --compile-bytecode --python $(VENV)/bin/python --find-links $(TORCH_FIND_LINKS) -c tests/constraints.txt -r tests/requirements.txt -e 'tasks_py[dev]'
	@touch $@

# Debian packages the controller needs (installed when missing; root + apt): for lint,
# the Slurm tests' real Slurm on loopback and the e2e test's headless browser; as package:command
# (installed when the command is missing)
HOST_TOOLS := shellcheck:shellcheck slurm-wlm:sbatch munge:munged slurmdbd:slurmdbd mariadb-server:mariadbd chromium:chromium openssh-server:sshd
host-tools:
	@missing=""; for t in $(HOST_TOOLS); do c=$${t#*:}; command -v $$c >/dev/null || test -x /usr/sbin/$$c || missing="$$missing $${t%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "host-tools: ERROR:$$missing missing and cannot be installed here (need root and apt-get): install the Debian package(s)$$missing and run again" >&2; exit 1; fi; \
	  echo "host-tools: installing Debian package(s)$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	    || { echo "host-tools: ERROR: apt-get install$$missing failed" >&2; exit 1; }; \
	fi

venv: $(STAMP) ## Create .venv with the pinned tools (done by every target on first use)

# DALiuGE managers for the executor tests, in their own venv (daliuge-engine's pins apart from MLflow's)
DLG_VENV  := $(TOP)/.venv-dlg
DLG_STAMP := $(DLG_VENV)/.mlpipe-installed
$(DLG_STAMP): tests/dlg/requirements.txt tests/dlg/constraints.txt
	@echo "dlg-venv: installing daliuge-engine into $(DLG_VENV) (first use only)"
	@test -x $(DLG_VENV)/bin/python || python3 -m venv $(DLG_VENV)
	@$(DLG_VENV)/bin/$(UV_INSTALL)
	@$(DLG_VENV)/bin/uv pip install -q --system-certs --compile-bytecode --python $(DLG_VENV)/bin/python -c tests/dlg/constraints.txt -r tests/dlg/requirements.txt
	@touch $@

dlg-venv: $(DLG_STAMP) ## Create .venv-dlg with the DALiuGE managers the executor tests start (by test-unit)

$(TOP)/.vault-pass:
	@umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	@echo "vault: generated $@ (the local inventory's vault password; keep it, never commit it)"

wheel: $(STAMP) ## Build the mlpipe wheel the roles install on hosts (dist/, once per source change)
	@python ansible/scripts/build_wheel.py

up: $(STAMP) $(TOP)/.vault-pass wheel ## Start the whole platform on local containers, then run the demo pipeline
	@ansible/scripts/ensure-docker.sh
	@python ansible/scripts/runbook.py up

down: $(STAMP) ## Remove every container and network `make up` created (and nothing else)
	@ansible/scripts/ensure-docker.sh
	@python ansible/scripts/runbook.py down

# $(call timed,TARGET): run `make TARGET` as one stage of `make test`, timed
define timed
	@start=$$(date +%s); echo "=== stage $(1): start $$(date -u +%H:%M:%S)"; \
	rc=0; $(MAKE) $(1) || rc=$$?; \
	if [ $$rc -eq 0 ]; then result=ok; else result="FAILED (exit $$rc)"; fi; \
	echo "=== stage $(1): $$result in $$(( $$(date +%s) - start )) s"; exit $$rc
endef

test: ## Everything CI checks: lint, unit, roles, end-to-end
	$(call timed,test-setup)
	$(call timed,lint)
	$(call timed,test-unit)
	$(call timed,test-roles)
	$(call timed,test-e2e)

# `make test`'s first stage: what the other stages install on first use (venvs, the wheel,
# Debian tools, the Docker engine, the base image), so that each stage's time is its own.
# Three at a time: pip, apt and debootstrap mostly wait on downloads; apt and debootstrap stay
# in one chain (host-tools, then docker.io, then the image that needs the engine).
test-setup: ## What the other test stages install on first use (venvs, wheel, Debian tools, Docker, base image)
	@$(MAKE) -j 3 --output-sync=target setup-python setup-host

setup-python: wheel $(DLG_STAMP) $(TOP)/.vault-pass

setup-host: host-tools
	@ansible/scripts/ensure-docker.sh
	@ansible/scripts/build-base-image.sh >/dev/null

test-unit: $(STAMP) $(DLG_STAMP) host-tools ## Python tests: NGAS client, cache, MLflow plugin, tasks, Terraform wiring
	@pytest -n $(UNIT_JOBS) --durations=15 tests/unit tests/terraform $(PYTEST_ARGS)

test-roles: $(STAMP) $(TOP)/.vault-pass wheel ## Molecule scenario of every role (ROLE=name runs one)
	@tests/molecule/run.sh $(ROLE)

test-e2e: $(STAMP) $(TOP)/.vault-pass wheel host-tools ## Multi-host tests on the local cluster (the results site also in headless Chromium)
	@ansible/scripts/ensure-docker.sh
	@pytest --durations=0 tests/e2e $(PYTEST_ARGS)

# the linters run LINT_JOBS at a time (make -j), each one's output printed whole when
# it ends (--output-sync); -k: every linter runs and reports even when one fails
LINT_JOBS ?= 2
LINTERS := lint-ansible lint-types lint-yaml lint-python lint-shell lint-terraform lint-ci
lint: $(STAMP) $(TOP)/.vault-pass host-tools ## yamllint, ansible-lint (production), ruff, mypy --strict, shellcheck, terraform fmt + checkov, CI definitions
	@$(MAKE) -k -j $(LINT_JOBS) --output-sync=target $(LINTERS)

lint-yaml: $(STAMP)
	@echo "lint: yamllint"; yamllint -s .

lint-ansible: $(STAMP) $(TOP)/.vault-pass
	@echo "lint: ansible-lint (production profile)"; cd ansible && ansible-lint --profile production -q $(TOP)/ansible $(TOP)/roles

lint-python: $(STAMP)
	@echo "lint: ruff"; ruff check tasks_py tests bench ansible roles terraform .ci && ruff format --check tasks_py tests bench ansible roles terraform .ci

lint-types: $(STAMP)
	@echo "lint: mypy --strict (tasks_py/mlpipe)"; mypy --strict --config-file tasks_py/pyproject.toml tasks_py/mlpipe

lint-shell: host-tools
	@echo "lint: shellcheck"; { echo .ci/run; git ls-files --cached --others --exclude-standard '*.sh'; } | xargs -d '\n' shellcheck

lint-terraform: $(STAMP) ## terraform fmt -check, checkov (offline) and checkov's secrets scan of the repository's files
	@MLPIPE_UV_VERSION=$(UV_VERSION) tests/terraform/lint.sh

lint-ci: $(STAMP) host-tools ## GitHub workflows and .gitlab-ci.yml: schemas, permissions, shellcheck (offline)
	@echo "lint: CI definitions (tests/ci/lint_ci.py)"; python tests/ci/lint_ci.py

bench: $(STAMP) ## Benchmarks, printed as ratios measured side by side
	@bench/run.sh

provision: $(STAMP) $(TOP)/.vault-pass ## Create the GCP platform with Terraform, then run ansible/site.yml on it
	@terraform/scripts/provision.sh

destroy: $(STAMP) ## Tear the GCP platform down (asks for confirmation)
	@terraform/scripts/destroy.sh

clean: ## Remove .venv and caches (not the local cluster: use make down)
	rm -rf $(VENV) .pytest_cache .ruff_cache
