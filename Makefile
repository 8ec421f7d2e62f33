.PHONY: setup test demo lint unit

setup:
	scripts/setup.sh

test: setup
	scripts/test.sh

demo: setup
	scripts/demo.sh

unit: setup
	.venv/bin/pytest tests/unit
