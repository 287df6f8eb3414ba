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
	// A closed terminal (SIGHUP) ends KeyDesk as ^C and SIGTERM do: the
	// console closes, the demo removes its temporary folder.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
