// Command rebootmgr reboots the nodes of a Consul cluster one at a time, when it is safe.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// Reboot windows name IANA time zones; the binary carries the database so that it does not
	// depend on the machine's.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{lookup: os.LookupEnv, environ: os.Environ, hostname: os.Hostname}, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
