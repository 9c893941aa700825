"""Measuring one cell without pytest: timing, memory, FLOPs, energy, isolation in a child process."""
