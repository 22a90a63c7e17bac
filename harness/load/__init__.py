"""Load: Locust drives daily-order traffic at an open-model rate and records a client ledger.

See docs/load.md. `runner` (run_load, load_summary) and `cli` are what the rest of the harness
uses; `user`, `shape` and `webui` import Locust (and so gevent's monkey-patching) and are only
imported by scenarios/load/locustfile.py, inside the Locust process.
"""
