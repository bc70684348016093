package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		// One line: what failed, naming the flag and what was tried.
		fmt.Fprintln(os.Stderr, "server:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// run runs the server, or the balancer for "lb", until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "lb" {
		return runBalancer(ctx, args[1:], stdout, stderr)
	}
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, c, stdout, stderr)
}
