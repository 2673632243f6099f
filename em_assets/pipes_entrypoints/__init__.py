"""Processes Dagster launches through Pipes (``python -m em_assets.pipes_entrypoints.<job>``).

Each runs the same code the local backend runs in-process, in a subprocess (local profile,
tests) or an ECS task on a GPU host (production profile), reads its parameters from the Pipes
extras, moves files through the artifact store and reports metrics back through Pipes.
"""
