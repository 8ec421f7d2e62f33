.PHONY: setup test demo lint unit bench bench-smoke

setup:
	scripts/setup.sh

test: setup
	scripts/test.sh

demo: setup
	scripts/demo.sh

unit: setup
	.venv/bin/pytest tests/unit

# Benchmarks on the lab (root): floor vs site.yml, 3 reps of 3+0/10/30 nodes (~30 min); see docs/benchmarks.md.
bench: setup
	.venv/bin/python -m bench

bench-smoke: setup
	.venv/bin/python -m bench --reps 1 --control-planes 1 --workers 1 --rerun-workers 1 --out /tmp/vipadm-bench-smoke
