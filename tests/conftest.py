import sys
from pathlib import Path

# Lets tests import the shared helpers in this folder (``from _browser import check_html``).
sys.path.insert(0, str(Path(__file__).parent))


# Profiles of the property suite (tests/test_properties.py): `make test` runs "ci" (bounded: a few
# seconds per property), `make fuzz` runs "fuzz" (HYPOTHESIS_PROFILE=fuzz: many more cases).
try:
    import os

    from hypothesis import HealthCheck, settings

    _common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("ci", max_examples=40, derandomize=True, **_common)
    settings.register_profile("fuzz", max_examples=3000, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is in the test extra; without it only the property tests are skipped
    pass
