"""Stages: what one CLI command or recipe stage runs. Each reads its inputs from directories, calls
the algorithm modules, writes its outputs atomically and marks completion last. Only this layer (and
the CLI above it) knows about directory layouts beyond a single file."""
