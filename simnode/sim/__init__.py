"""The deterministic simulation engine's node side: virtual time, seeded scheduling, and the
in-memory network that carries calls between in-process nodes (DESIGN.md "Engines and hosts").

The coordinator's half (the `sim` node hosts, the in-process REST client, the runner that ties a
seed to a whole run) is coordinator/engine/sim.py; simnode never imports coordinator.
"""
