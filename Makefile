# Shorthands for dev.py, which needs only Python 3.11+ and makes .venv on first use.
#   make serve | make test | make bench [ARGS="--quick"]
.PHONY: serve test bench

serve:
	python3 dev.py serve $(ARGS)

test:
	python3 dev.py test $(ARGS)

bench:
	python3 dev.py bench $(ARGS)
