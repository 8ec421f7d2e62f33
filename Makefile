.PHONY: setup test test-upgrade demo lint unit bench bench-smoke

setup:
	scripts/setup.sh

test: setup
	scripts/test.sh

# The upgrade 1.36.3 -> 1.37.2 on a 3+1 lab alone (root, about 16 minutes with its bootstrap); `make test` runs it in its second lane.
test-upgrade: setup
	.venv/bin/python -m lab build --all
	.venv/bin/pytest -m upgrade tests/integration/test_upgrade_real.py

demo: setup
	scripts/demo.sh

unit: setup
	.venv/bin/pytest tests/unit

# Benchmarks on the lab (root): floor vs site.yml, 3 reps of 3+0/10/30 nodes (~30 min); see docs/benchmarks.md.
bench: setup
	.venv/bin/python -m bench

bench-smoke: setup
	.venv/bin/python -m bench --reps 1 --control-planes 1 --workers 1 --rerun-workers 1 --out /tmp/vipadm-bench-smoke

# The vagrant-libvirt scenario on real VMs (root; Debian's vagrant and libvirt, a locally built box): docs/vagrant.md.
.PHONY: test-vagrant
test-vagrant: setup
	scripts/vagrant-setup.sh
	PATH="$(CURDIR)/.venv/bin:$$PATH" molecule test -s vagrant-libvirt
