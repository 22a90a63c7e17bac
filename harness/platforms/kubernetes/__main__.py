"""`python -m harness.platforms.kubernetes up|down|status|endpoints|render|heal`: the Kubernetes
platform from the command line, for `make kind-up`, `make minikube-up` and `make k8s-down` (no
kubectl needed). `sagaquake up --platform k8s` does the same through the main CLI. `heal` removes
every partition and lost-reply object and resumes every frozen pod (what a crashed run left).
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.errors import HarnessError
from harness.platforms.kubernetes.manifests import DEFAULT_IMAGE, OVERLAYS
from harness.platforms.kubernetes.platform import KubernetesPlatform

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m harness.platforms.kubernetes")
    parser.add_argument("command", choices=("up", "down", "status", "endpoints", "render", "heal"))
    parser.add_argument("--context", help="kubeconfig context (default: current)")
    parser.add_argument("--overlay", choices=OVERLAYS)
    parser.add_argument("--image", help=f"image of every container (default {DEFAULT_IMAGE})")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--pod-exec",
        action="store_true",
        default=None,
        help="with up: also let the chaos identity exec into pods, which pause needs "
        "(k8s/base/chaos-rbac-exec.yaml; env SAGAQUAKE_K8S_POD_EXEC=1)",
    )
    args = parser.parse_args(argv)
    from harness.settings import state_dir

    try:
        platform = KubernetesPlatform(
            state_dir() / "k8s", context=args.context, overlay=args.overlay, image=args.image,
            pod_exec=args.pod_exec,
        )  # fmt: skip
        if args.command == "render":
            import yaml

            sys.stdout.write(yaml.safe_dump_all(platform.manifests(), sort_keys=False))
        elif args.command == "up":
            platform.up(args.timeout)
            print(json.dumps(platform.endpoints().as_dict(), indent=2))
        elif args.command == "down":
            platform.down()
        elif args.command == "heal":
            print(json.dumps(platform.sweep(), indent=2))
        elif args.command == "status":
            for r in platform.status():
                print(
                    f"{r.service:22} {r.name:45} {r.state:18} ready={r.ready} restarts={r.restarts}"
                )
        else:
            print(json.dumps(platform.endpoints().as_dict(), indent=2))
    except HarnessError as exc:
        print(f"sagaquake: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
