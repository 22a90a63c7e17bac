"""The Chaos Toolkit extension: the faults of scenarios/chaos, through the Platform protocol.

Experiment files name functions of `actions` (faults, each proving it landed and writing its
window to history/faults.jsonl via `faults`), `probes` (steady state, safeguard limits, the
`within` tolerance) and `rollbacks` (idempotent clean-up); every file declares the `control`
(landing enforcement, the `safeguard`, the journal in the run folder). `context` says which
platform and run folder an activity acts on, `runner` runs a file from `sagaquake chaos`.
docs/chaos.md describes them all.
"""
