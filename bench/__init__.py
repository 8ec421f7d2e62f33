"""vipadm benchmarks: the floor (the eight steps by a plain script over SSH) against the site playbook."""
