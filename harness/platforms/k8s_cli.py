"""`python -m harness.platforms.k8s_cli up|down|status|endpoints|render`: the Kubernetes platform
from the command line, for `make kind-up`, `make minikube-up` and `make k8s-down` (no kubectl
needed). `sagaquake up --platform k8s` does the same through the main CLI.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.errors import HarnessError
from harness.platforms.k8s_manifests import DEFAULT_IMAGE, OVERLAYS
from harness.platforms.kubernetes import KubernetesPlatform

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m harness.platforms.k8s_cli")
    parser.add_argument("command", choices=("up", "down", "status", "endpoints", "render"))
    parser.add_argument("--context", help="kubeconfig context (default: current)")
    parser.add_argument("--overlay", choices=OVERLAYS)
    parser.add_argument("--image", help=f"image of every container (default {DEFAULT_IMAGE})")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    from harness.settings import state_dir

    platform = KubernetesPlatform(
        state_dir() / "k8s", context=args.context, overlay=args.overlay, image=args.image
    )
    try:
        if args.command == "render":
            import yaml

            sys.stdout.write(yaml.safe_dump_all(platform.manifests(), sort_keys=False))
        elif args.command == "up":
            platform.up(args.timeout)
            print(json.dumps(platform.endpoints().as_dict(), indent=2))
        elif args.command == "down":
            platform.down()
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
