"""vipadm's lab: fake bare-metal nodes from Linux namespaces (see docs/lab.md).

`from lab import Lab` gives the Python API. The import is lazy so that the simulator
(`python3 -m lab.sim.*`, run inside the nodes) does not load the controller side.
"""

__all__ = ["Lab", "LabError", "Node", "PlanError"]


def __getattr__(name):
    if name in ("Lab", "LabError"):
        from . import core

        return getattr(core, name)
    if name in ("Node", "PlanError"):
        from . import plan

        return getattr(plan, name)
    raise AttributeError(f"module 'lab' has no attribute {name!r}")
