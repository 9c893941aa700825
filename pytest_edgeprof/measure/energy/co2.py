"""The CO2 figure beside every source, at CodeCarbon's offline carbon intensity, and CodeCarbon's quiet import.

Carbon intensity comes from the data CodeCarbon ships (no network): a country's energy mix, or its
world average (475 g/kWh) when no country is given. CodeCarbon is imported on first use only, with
its INFO logging and amdsmi's stdout chatter silenced.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from functools import cache
from typing import Any

from pytest_edgeprof.errors import UsageError

JOULES_PER_KWH = 3.6e6


@contextlib.contextmanager
def _quiet_codecarbon_import():
    """CodeCarbon logs at INFO from import, and amdsmi prints to stdout when ROCm is absent."""
    user_level = os.environ.get("CODECARBON_LOG_LEVEL")
    if user_level is None:
        os.environ["CODECARBON_LOG_LEVEL"] = "error"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if user_level is None:
            os.environ.pop("CODECARBON_LOG_LEVEL", None)


def _codecarbon() -> Any:
    if "codecarbon" not in sys.modules:
        with _quiet_codecarbon_import():
            import codecarbon  # noqa: F401
            import codecarbon.core.emissions  # noqa: F401
    import codecarbon

    return codecarbon


@cache
def _kg_co2_per_kwh(country_iso_code: str | None) -> float:
    """CodeCarbon's offline carbon intensity for a country (None: its world average, 475 g/kWh)."""
    _codecarbon()
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    emissions = Emissions(DataSource())
    where = GeoMetadata(country_iso_code=country_iso_code)  # type: ignore[arg-type]  # codecarbon takes None (world average), annotates str
    return emissions.get_private_infra_emissions(Energy(kWh=1.0), where)


def co2_kg(joules: float | None, country_iso_code: str | None = None) -> float | None:
    """CO2-equivalent of ``joules`` at CodeCarbon's offline intensity for the country."""
    if joules is None:
        return None
    return joules / JOULES_PER_KWH * _kg_co2_per_kwh(country_iso_code)


def check_country(country_iso_code: str | None) -> str | None:
    """The code upper-cased, or UsageError when CodeCarbon's offline data does not know it."""
    if country_iso_code is None:
        return None
    _codecarbon()
    from codecarbon.input import DataSource

    code = country_iso_code.strip().upper()
    if code not in DataSource().get_global_energy_mix_data():
        raise UsageError(
            f"unknown country {country_iso_code!r}: "
            "give a 3-letter ISO code CodeCarbon knows (e.g. USA, FRA, DEU)"
        )
    return code
