import sys

from lab.sim.kubeadm.cli import main

sys.exit(main(sys.argv[1:]))
