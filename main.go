// Command keydesk is a terminal console that brings Active Directory users,
// hardware security keys and domain passwords under one roof. This file only
// starts the command line (package cli), which wires the pieces together.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"keydesk/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
