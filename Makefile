# The two commands: `make run` starts Portico, `make test` runs every test.
.PHONY: run test bench

run:
	bash scripts/run.sh $(ARGS)

test:
	bash scripts/test.sh

bench:
	bash bench/hello.sh
	bash bench/environments.sh
