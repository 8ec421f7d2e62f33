"""vipadm's lab: bare-metal nodes from Linux namespaces running the real Kubernetes programs (see docs/lab.md).

`from lab import Lab` gives the Python API. The import is lazy so that importing one part
(`lab.components`, `lab.network`) does not load the others.
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
