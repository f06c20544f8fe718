.PHONY: build test demo consul deb

build:
	go build -o bin/rebootmgr ./cmd/rebootmgr

test:
	./scripts/test

demo:
	./scripts/demo

consul:
	./scripts/install-consul

deb:
	./scripts/deb
