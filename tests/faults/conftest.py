"""Hypothesis profiles of the fault suite (registered here, loaded by name where used, so
no other test module's settings change).

``faults`` (the default) runs a few hundred schedules in the normal test run;
``faults-long`` a few thousand: ``PAYFALLBACK_FAULTS_PROFILE=faults-long python -m pytest
tests/faults``. The campaign (``python -m tests.faults.campaign``) runs any number.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("faults", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("faults-long", max_examples=3_000, **_COMMON)  # type: ignore[arg-type]
