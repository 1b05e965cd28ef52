# Inference Fleet: `make up` runs the fleet, `make test` runs the tests (both set themselves up).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= server,cpu,dev

.PHONY: setup up test test-fast fuzz models protos lint-protos bench bench-smoke image image-offline render clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

setup: $(VENV)/.installed

## Run registry, a worker and the gateway here with the demo models (embedded Redis unless REDIS_URL is set).
up: setup
	$(VENV)/bin/fleet up

## The whole test suite (starts what it needs: Redis on 6379 when it answers, else an embedded one); it ends with
## the 40 slowest test phases (setup, call, teardown: a module's fleet start shows as its first test's setup).
DURATIONS ?= 40
test: setup
	$(PY) -m pytest -q --durations=$(DURATIONS)

## The suite without the slow tests.
test-fast: setup
	$(PY) -m pytest -q --durations=$(DURATIONS) -m "not slow"

## The fuzz properties with ten times CI's examples, freshly random (failures are kept in .hypothesis/).
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -m fuzz

## Retrain the demo models and regenerate the sample images (needs torch: installs the [train] extra).
models: setup
	$(PY) -m pip install --quiet torch==2.13.0 -e '.[$(EXTRAS),train]'
	$(PY) -m services.demo.train --task all
	$(PY) -m services.demo.samples

## The benchmark suite (about 15 minutes; run it on a quiet machine): tables, JSON and plots in bench/results/.
bench: setup
	$(PY) -m bench

## Every benchmark scenario for a few seconds (writes bench/results/smoke/; numbers not meaningful).
bench-smoke: setup
	$(PY) -m bench --smoke

## Regenerate the committed Python stubs from protos/.
protos: setup
	$(PY) scripts/gen_protos.py

## The container image (VARIANT=cpu or gpu) with podman, docker or buildah, whichever works here.
VARIANT ?= cpu
image:
	deploy/build-image.sh $(VARIANT)

## The CPU image without a container registry (as the tests build it): a debootstrap Debian 12 base,
## a wheelhouse for its Python, podman build --network=none; needs root (installs podman with apt-get).
image-offline: setup
	$(PY) -m tests.deploy.images

## Print the Kubernetes manifests of an overlay (OVERLAY=cpu, gpu, dev or cert-manager).
OVERLAY ?= cpu
render:
	kubectl kustomize deploy/k8s/overlays/$(OVERLAY)

lint-protos:
	cd protos && npx --yes @bufbuild/buf@1.75.0 lint

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
