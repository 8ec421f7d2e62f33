"""The lab network's services: the DNS that answers the lab's names (dns.py) and the pod network
agent that does what a CNI daemon (kind's kindnetd) does (pods.py)."""
