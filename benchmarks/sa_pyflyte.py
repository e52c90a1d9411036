"""``pyflyte serve connector --modules benchmarks.sa_pyflyte``: :mod:`benchmarks.sa_service`'s credentials setup
under pyflyte.

pyflyte imports every ``--modules`` module before it builds the server, and no setting of ours makes the
connector load ADC while ``BIGQUERY_EMULATOR_HOST`` is set, so importing this module applies
:func:`benchmarks.sa_service.use_adc_with_emulator` (every ``ClientPool`` authenticates with the
service-account key in ``GOOGLE_APPLICATION_CREDENTIALS``, as upstream does). It changes nothing else: unlike
the launcher, pyflyte neither warms up nor freezes the GC, and that difference is part of what is measured.
"""

from __future__ import annotations

from benchmarks.sa_service import use_adc_with_emulator

use_adc_with_emulator()
