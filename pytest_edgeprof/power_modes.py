"""Power modes of the boards: the clocks each mode sets, so a prediction scales with the mode.

A mode caps the GPU clock (peak FLOP/s scale with it), the CPU clock and the online cores (the host
side of an eager forward, one op after another on one core, scales with the clock) and the memory
clock (bandwidth). The first mode of a board is its highest, the one a prediction takes by default.
Each figure cites where it was published; a figure left at the highest mode's value where no lower
one was found says so in its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_edgeprof.errors import UsageError


@dataclass(frozen=True)
class PowerMode:
    name: str  # as nvpmodel names it: "MAXN", "5W", "15W", "MAXN_SUPER"
    watts: float  # the mode's power budget (module power)
    gpu_hz: float  # the GPU's highest clock in this mode
    cpu_hz: float  # the CPU's highest clock in this mode
    cpu_cores: int  # cores online
    bandwidth_bytes_per_s: float
    source: str


_NANO_MODES = ("NVIDIA Jetson Linux (L4T 32) Developer Guide, 'Power Management for Jetson Nano', table 'Supported "
               "modes and power efficiency': MAXN (mode 0): 4 CPU cores at 1479 MHz, GPU at 921.6 MHz; 5W (mode 1): "
               "2 cores at 918 MHz, GPU at 640 MHz; memory at 1600 MHz (25.6 GB/s) in both")
_ORIN_NANO_MODES = ("NVIDIA Jetson Linux (JetPack 6) Developer Guide, 'Power Management for Jetson Orin Nano and Orin "
                    "NX', Orin Nano 8GB: 15W: 6 CPU cores at 1510.4 MHz, GPU at 624.75 MHz; 7W: 4 cores at 960 MHz, "
                    "GPU at 408 MHz; memory at 3199 MHz (68 GB/s). The 7W clocks are as that guide's table was read, "
                    "not checked against its text here; the 7W mode's memory clock is kept at 15W's (an assumption)")
_ORIN_NANO_SUPER = ("NVIDIA technical blog 'NVIDIA Jetson Orin Nano Developer Kit Gets a Super Boost' (Dec 2024) and "
                    "JetPack 6.1 (rev. 1) release notes: MAXN_SUPER (25 W): GPU at 1020 MHz, 6 CPU cores at 1728 MHz, "
                    "memory 102 GB/s (LPDDR5 at 6400 MT/s); 67 INT8 TOPS sparse")
_XAVIER_MODES = ("NVIDIA Jetson Linux (L4T 32) Developer Guide, 'Power Management for Jetson AGX Xavier': MAXN: 8 "
                 "Carmel cores at 2265.6 MHz, GPU at 1377 MHz, memory at 2133 MHz (137 GB/s); the lower modes are "
                 "not in this profile")

POWER_MODES: dict[str, tuple[PowerMode, ...]] = {
    "jetson-nano": (PowerMode("MAXN", 10.0, 921.6e6, 1479e6, 4, 25.6e9, _NANO_MODES),
                    PowerMode("5W", 5.0, 640e6, 918e6, 2, 25.6e9, _NANO_MODES)),
    "jetson-orin-nano": (PowerMode("15W", 15.0, 624.75e6, 1510.4e6, 6, 68e9, _ORIN_NANO_MODES),
                         PowerMode("7W", 7.0, 408e6, 960e6, 4, 68e9, _ORIN_NANO_MODES)),
    "jetson-orin-nano-super": (PowerMode("MAXN_SUPER", 25.0, 1020e6, 1728e6, 6, 102e9, _ORIN_NANO_SUPER),
                               PowerMode("15W", 15.0, 624.75e6, 1510.4e6, 6, 68e9, _ORIN_NANO_MODES)),
    "jetson-agx-xavier": (PowerMode("MAXN", 30.0, 1377e6, 2265.6e6, 8, 136.5e9, _XAVIER_MODES),),
}


def power_mode(board: str, name: str | None = None) -> PowerMode | None:
    """The board's mode called ``name`` (its highest where None); None for a board without modes (a PC's GPU)."""
    modes = POWER_MODES.get(board)
    if not modes:
        if name is not None:
            raise UsageError(f"--power-mode {name}: {board} has no power modes; leave --power-mode out")
        return None
    if name is None:
        return modes[0]
    found = next((mode for mode in modes if mode.name.lower() == name.strip().lower()), None)
    if found is None:
        raise UsageError(f"unknown --power-mode {name!r} for {board}; accepted: {', '.join(m.name for m in modes)}")
    return found


def highest(board: str) -> PowerMode | None:
    modes = POWER_MODES.get(board)
    return modes[0] if modes else None
