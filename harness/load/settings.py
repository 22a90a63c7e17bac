"""The load run's settings by name: `LoadSettings` (defined with every other setting in
harness/settings.py), its defaults and the environment variable of each.

The CLI flags (`harness.load.cli`) take their defaults from these variables, the runner passes
them to the Locust processes, and the locustfile reads them with `LoadSettings.from_env()`.
"""

from __future__ import annotations

from harness.settings import LoadSettings

__all__ = ["DEFAULTS", "ENV", "LoadSettings"]

DEFAULTS = LoadSettings()  # what a setting is when neither its flag nor its variable says
ENV = {name: LoadSettings.env_name(name) for name in LoadSettings.model_fields}  # -> variable
