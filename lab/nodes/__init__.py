"""The lab's nodes: namespaces, disk, PID 1, sshd, power off/on, isolate/rejoin (node.py, pid1.py,
shims/systemctl); what a real node runs on top (real.py); the machine's limit they share (limits.py)."""
