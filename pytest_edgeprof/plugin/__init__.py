"""The pytest side of edgeprof: hooks, options and ini keys, markers, the run's state, the fixtures."""
