# Kubernetes targets. The Makefile includes this file at its end (`include k8s/make.mk`), after
# BIN and STAMP are defined. See docs/kubernetes.md.
#
#   make kind-up        create a kind cluster (k8s/kind/cluster.yaml), build the image, load it,
#                       apply k8s/overlays/kind and wait for every rollout
#   make minikube-up    the same on minikube (image built inside minikube)
#   make k8s-down       delete the stack (namespace sagaquake) from the cluster; the cluster stays
#   make kind-down / minikube-down   delete the cluster itself
#   make chaos PLATFORM=k8s          the default suite against the stack of the current context
#
# Applying needs no kubectl: `sagaquake up --platform k8s` renders the overlay and applies it
# through the Kubernetes API; `sagaquake down --platform k8s` deletes the namespace.

KIND_CLUSTER ?= sagaquake
IMAGE ?= sagaquake:dev
KIND_CONFIG ?= k8s/kind/cluster.yaml
MINIKUBE_PROFILE ?= minikube
MINIKUBE_DRIVER ?= docker
MINIKUBE_START_FLAGS ?= --cpus=4 --memory=6g
K8S_UP_TIMEOUT ?= 600
DOCKER ?= docker
# The stack's NodePorts (k8s/base; tests/unit/k8s checks this list). kind maps them with
# k8s/kind/cluster.yaml; minikube's docker and podman drivers publish them with --ports.
K8S_NODE_PORTS := 30080 30081 30082 30083 30089 30379 30733 30823

_k8s_comma := ,
_k8s_empty :=
_k8s_space := $(_k8s_empty) $(_k8s_empty)
_MINIKUBE_PORTS := $(subst $(_k8s_space),$(_k8s_comma),$(foreach p,$(K8S_NODE_PORTS),127.0.0.1:$(p):$(p)))

.PHONY: k8s-image kind-up kind-down minikube-up minikube-down k8s-down

k8s-image:
	$(DOCKER) build -t '$(IMAGE)' .

kind-up: $(STAMP) k8s-image
	@command -v kind >/dev/null || { echo "kind is missing: install it first (docs/kubernetes.md)"; exit 1; }
	@if kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster '$(KIND_CLUSTER)' exists: reusing it"; \
	else \
	  kind create cluster --name '$(KIND_CLUSTER)' --config '$(KIND_CONFIG)' --wait 180s; \
	fi
	kind load docker-image '$(IMAGE)' --name '$(KIND_CLUSTER)'
	$(BIN)/sagaquake up --platform k8s --context 'kind-$(KIND_CLUSTER)' --overlay kind --image '$(IMAGE)' --timeout $(K8S_UP_TIMEOUT)

kind-down:
	@command -v kind >/dev/null || { echo "kind is missing: nothing to delete"; exit 0; }
	kind delete cluster --name '$(KIND_CLUSTER)'

minikube-up: $(STAMP)
	@command -v minikube >/dev/null || { echo "minikube is missing: install it first (docs/kubernetes.md)"; exit 1; }
	@if minikube status -p '$(MINIKUBE_PROFILE)' >/dev/null 2>&1; then \
	  echo "minikube profile '$(MINIKUBE_PROFILE)' is running: reusing it"; \
	else \
	  minikube start -p '$(MINIKUBE_PROFILE)' --driver='$(MINIKUBE_DRIVER)' $(MINIKUBE_START_FLAGS) \
	    $(if $(filter docker podman,$(MINIKUBE_DRIVER)),--ports='$(_MINIKUBE_PORTS)'); \
	fi
	minikube -p '$(MINIKUBE_PROFILE)' image build -t '$(IMAGE)' .
	$(BIN)/sagaquake up --platform k8s --context '$(MINIKUBE_PROFILE)' --overlay minikube --image '$(IMAGE)' --timeout $(K8S_UP_TIMEOUT)

minikube-down:
	@command -v minikube >/dev/null || { echo "minikube is missing: nothing to delete"; exit 0; }
	minikube delete -p '$(MINIKUBE_PROFILE)'

# K8S_CONTEXT=... picks another context than the current one.
k8s-down: $(STAMP)
	$(BIN)/sagaquake down --platform k8s $(if $(K8S_CONTEXT),--context '$(K8S_CONTEXT)')
