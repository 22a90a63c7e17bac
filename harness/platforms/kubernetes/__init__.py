"""The Kubernetes platform (kind, minikube), one module per job:

- `platform.py`: `KubernetesPlatform`, the Platform protocol over the Kubernetes API
- `manifests.py`: render k8s/overlays/<overlay> with no kubectl; `checks.py`: what schema
  validation cannot see in them
- `api.py`: the API as the platform uses it (two identities, apply, exec, errors, logs)
- `pods.py`: the platform's decisions on plain values (which pods to kill, what proves a kill
  landed, when a workload is rolled out, where the node is)
- `faults.py` and `fault_specs.py`: pause, partition and reply loss, and what they are made of
- `held_work.py`: the work a pod holds unfinished, for a kill mid-request
- `deploy.py`: the `Deploy` protocol, a Deployment's rolling update
- `__main__.py`: `python -m harness.platforms.kubernetes`

Nothing is imported here, so rendering the manifests does not load the Kubernetes client.
"""
