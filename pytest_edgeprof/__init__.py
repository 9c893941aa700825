"""pytest-edgeprof: does this CNN fit that edge device, and in which configuration?"""

__version__ = "0.1.0"
