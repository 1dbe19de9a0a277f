"""`evolora dashboard`: a local, read-only web app that lists run folders and charts them live.

Systems add their own charts with `register_panels(system, builder)` (see registry.py); the same
figure code (figures.py) draws `evolora report --html`.
"""

from __future__ import annotations

from evolora.telemetry.dashboard.registry import register_panels

__all__ = ["register_panels"]
