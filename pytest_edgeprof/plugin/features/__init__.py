"""Feature plugins: what only some runs need, each a class with its own state, registered with pytest
(``config.pluginmanager.register``) only when its option is set, as pytest registers its cache
provider's ``LFPlugin`` only for ``--lf``.

A feature depends on the session core (``session.py``, ``extension.py``), never the reverse: the core
reaches a registered feature through ``EdgeprofSession.features`` alone. Only the entry point
(``hooks.py``) imports this package, to register them.

- ``emulation.py``  ``--emulate``: each cell's figures predicted on a target device
- ``cooldown.py``   ``--cooldown``: a pause or a temperature wait before each cell but the first
- ``peak.py``       the device's peak per precision and each cell's efficiency (whenever cells are timed)
- ``rerun_history.py``  each cell's median in pytest's cache: the spread of earlier reruns, in each repeat interval
- ``compare.py``    ``--edgeprof-compare-fail``: the in-run regression gate
- ``resume.py``     ``--resume``: the cells the old journal holds as measured, replayed (every run journals)
- ``store.py``      ``--edgeprof-store``: the finished run written into the results store
- ``remote.py``     ``--device ssh://...`` or ``labgrid:PLACE``: each cell measured on a board over SSH (a labgrid
                    place held for the session)
"""

from __future__ import annotations

import pytest

from pytest_edgeprof.plugin.session import EdgeprofSession
from pytest_edgeprof.remote.address import is_ssh_device
from pytest_edgeprof.remote.labgrid_place import is_labgrid_device


def register_features(config: pytest.Config, session: EdgeprofSession) -> None:
    """Register each feature this run asked for with pytest, and the cell features with the session,
    in the order they act before a cell: the peak probe, the cooldown, the emulated target, the rerun history."""
    settings, manager = session.settings, config.pluginmanager
    if is_ssh_device(settings.device) or is_labgrid_device(settings.device):
        from pytest_edgeprof.plugin.features.remote import register_remote

        register_remote(config, session)
    if session.benchmark.enabled and session.features.remote is None:  # the host's peak says nothing of the board
        from pytest_edgeprof.plugin.features.peak import PeakPlugin

        manager.register(peak := PeakPlugin(session), "edgeprof-peak")
        session.features.add(peak)
    if settings.cooldown is not None:
        from pytest_edgeprof.plugin.features.cooldown import CooldownPlugin

        manager.register(cooldown := CooldownPlugin(settings.cooldown), "edgeprof-cooldown")
        session.features.add(cooldown)
    if settings.emulate is not None:
        from pytest_edgeprof.plugin.features.emulation import EmulationPlugin

        manager.register(emulation := EmulationPlugin(settings.emulate, session), "edgeprof-emulation")
        session.features.add(emulation)
        session.features.emulation = emulation
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    if session.benchmark.enabled and cache is not None:
        from pytest_edgeprof.plugin.features.rerun_history import RerunHistoryPlugin

        manager.register(history := RerunHistoryPlugin(config, cache), "edgeprof-rerun-history")
        session.features.add(history)
    if settings.resume:
        from pytest_edgeprof.plugin.features.resume import ResumePlugin

        manager.register(resume := ResumePlugin(session), "edgeprof-resume")
        session.features.resume = resume
    spec = config.getoption("edgeprof_compare_fail")
    if spec:
        from pytest_edgeprof.plugin.features.compare import CompareGatePlugin

        manager.register(CompareGatePlugin.from_config(config, spec, session), "edgeprof-compare-gate")
    if settings.store is not None:
        from pytest_edgeprof.plugin.features.store import StorePlugin

        manager.register(StorePlugin.open(config, settings.store, settings.machine), "edgeprof-store")
