"""Shared pytest set-up: make ``ansible_collections.vipadm.kubeadm`` importable from a clone."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = str(REPO / ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
