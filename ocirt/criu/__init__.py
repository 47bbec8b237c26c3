"""Checkpoint and restore through criu: its RPC (rpc.py), the container described to it as runc
describes one (describe.py), and the command-line options both verbs share (options.py)."""
