"""What a run leaves and what is read back from it: the journal, saved runs, compare, limits, report, layers, capacity."""
