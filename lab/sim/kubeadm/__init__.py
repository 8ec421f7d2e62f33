"""The kubeadm stand-in of the lab simulator (``python -m lab.sim.kubeadm``).

Strict like the real kubeadm (see ``../shared/reference/kubeadm.md``): flags, config files,
preflight checks, PKI, kubeconfigs, static Pod manifests, API objects and output texts follow the
Kubernetes version the lab pretends to run (``lab.sim.config``).
"""
