package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one entry of the command table (commands in main.go).
type command struct {
	summary string            // one line, for `dueflow help`
	usage   func(w io.Writer) // synopsis and description; the flags and exit codes follow from the flag set and codes
	run     func(ctx context.Context, args []string) error
	codes   []exitDoc // exit codes of its own, beside exitCodes
}

// exitDoc documents one exit status.
type exitDoc struct {
	Code    int
	Meaning string
}

// The exit statuses every command shares.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitCodes are documented in every command's help.
var exitCodes = []exitDoc{
	{exitOK, "success (and after -h)"},
	{exitFailure, "the command failed; the reason is printed on stderr"},
	{exitUsage, "usage error: unknown command, unknown flag, missing or extra argument"},
}

// exitCode is returned by a command that has already reported its failure:
// main exits with the code and prints nothing more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageError is a mistake in the command line (exit 2). printed: the flag
// package has already printed it with the usage.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error (exit 2) with a formatted message.
func usageErrorf(format string, a ...any) error {
	return usageError{err: fmt.Errorf(format, a...)}
}

// newFlagSet returns the flag set of command name: it reports errors on
// out, and -h / --help print the command's help there (writeHelp).
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { writeHelp(fs.Output(), name, fs) }
	return fs
}

// parseFlags parses args with fs: -h is flag.ErrHelp (exit 0), any other
// flag error a usage error (exit 2; the flag set has printed it).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return err
	}
	return usageError{err: err, printed: true}
}

// noArgs refuses positional arguments left after the flags.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// writeHelp prints the help of command name: its usage, its flags with
// their defaults and its exit codes.
func writeHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c := commands[name]
	if c.usage != nil {
		c.usage(w)
	} else {
		fmt.Fprintf(w, "usage: dueflow %s [flags]\n\n%s\n", name, c.summary)
	}
	fmt.Fprintln(w, "\nflags:")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprintln(w, "\nexit codes:")
	for _, e := range append(append([]exitDoc(nil), exitCodes...), c.codes...) {
		fmt.Fprintf(w, "  %d  %s\n", e.Code, e.Meaning)
	}
}

// writeCommandList prints the overview `dueflow help` shows.
func writeCommandList(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow <command> [flags] [arguments]

dueflow runs the local stack and operates a dueflow database.

commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Run 'dueflow help <command>' or 'dueflow <command> -h' for a command's
flags, defaults and exit codes. Commands that open the database take --db
(default: $DATABASE_URL when set, else the local stack's database).

exit codes:
`)
	for _, e := range exitCodes {
		fmt.Fprintf(w, "  %d  %s\n", e.Code, e.Meaning)
	}
	fmt.Fprintln(w, "  (status has codes of its own: dueflow help status)")
}

// runHelp is `dueflow help [command]`: the overview, or one command's help,
// on stdout.
func runHelp(args []string) int {
	switch {
	case len(args) == 0:
		writeCommandList(os.Stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintf(os.Stderr, "dueflow help: one command at a time (got %s)\n", strings.Join(args, " "))
		return exitUsage
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "dueflow help: unknown command %q: run 'dueflow help' for the list of commands\n", args[0])
		return exitUsage
	}
	// Every command parses its flags before doing anything else, and -h
	// makes it print its help to the flag set's output (its stderr) and
	// return: asked for with `help`, the help goes to stdout.
	stderr := os.Stderr
	os.Stderr = os.Stdout
	err := c.run(context.Background(), []string{"-h"})
	os.Stderr = stderr
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "dueflow help %s: the command did not print its help (%v)\n", args[0], err)
		return exitFailure
	}
	return exitOK
}
