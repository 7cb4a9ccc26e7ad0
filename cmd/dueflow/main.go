// Command dueflow is the local stack and operator CLI: demo, invoke, tick,
// status, register, deliveries, settle, console, executions, execution,
// retry, cancel, bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand; each lives in its own file and registers itself
// with addCommand from an init function.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func addCommand(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

// exitCode is returned by a command that has already reported its failure:
// main exits with the code and prints nothing more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dueflow <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "dueflow: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			stop()
			os.Exit(0) // the flag set has printed its usage
		}
		var code exitCode
		if errors.As(err, &code) {
			stop()
			os.Exit(int(code)) // the command has said why
		}
		fmt.Fprintf(os.Stderr, "dueflow %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
