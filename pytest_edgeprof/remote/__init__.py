"""The board from the host: a remote board over SSH, and shared boards through labgrid."""
