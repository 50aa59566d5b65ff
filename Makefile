# The two commands: `make run` starts Portico, `make test` runs every test.
.PHONY: run test bench bench-gateway

run:
	bash scripts/run.sh $(ARGS)

test:
	bash scripts/test.sh

bench: bench-gateway
	bash bench/hello.sh
	bash bench/environments.sh
	bash bench/scale.sh
	bash bench/control.sh

# The gateway's pure per-request work (route match, event, response map), criterion.
bench-gateway:
	cargo bench -p portico-bench-gateway --locked
