// Command keydesk is a terminal console that brings Active Directory users,
// hardware security keys and domain passwords under one roof. This file only
// starts the command line (package cli), which wires the pieces together.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"keydesk/cli"
)

// softMemoryLimit is the heap size past which the garbage collector works
// harder rather than let the heap double (GOMEMLIMIT overrides it). It is
// never a hard cap: a larger live heap is still allowed.
const softMemoryLimit = 200 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	// A closed terminal (SIGHUP) ends KeyDesk as ^C and SIGTERM do: the
	// console closes, the demo removes its temporary folder.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	endProfiles := startProfiles()
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	endProfiles()
	stop()
	os.Exit(code)
}
