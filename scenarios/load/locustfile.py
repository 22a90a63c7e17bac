"""sagaquake's order load: open-model arrivals from a profile, a client ledger, a Saga ledger tab.

Run by `sagaquake load` (harness/load/runner.py), or by hand with the same environment variables
(see harness/load/settings.py and docs/load.md):

    SAGAQUAKE_PROFILE=flat SAGAQUAKE_DURATION_S=60 SAGAQUAKE_RUN_DIR=reports/manual \\
    SAGAQUAKE_ORDER_API=http://127.0.0.1:18080 locust -f scenarios/load/locustfile.py --headless

Everything lives in harness.load; this file only puts the pieces where Locust looks for them.
"""

from harness.load import webui  # noqa: F401  (registers the Saga ledger tab)
from harness.load.shape import ProfileShape
from harness.load.user import OrderUser

__all__ = ["OrderUser", "ProfileShape"]
