package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// buildDueflow builds the real binary once per test run.
func buildDueflow(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dueflow-cli-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "dueflow")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
	})
	require.NoError(t, buildErr, string(buildOut))
	return builtBin
}

// runCLI runs the binary with args and DATABASE_URL=env: stdout, stderr,
// exit status.
func runCLI(t *testing.T, env string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(buildDueflow(t), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return stdout.String(), stderr.String(), 0
}

func commandNames() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Every entry of the command table has a summary, a usage and a run.
func TestCommandTable(t *testing.T) {
	require.NotEmpty(t, commands)
	for n, c := range commands {
		assert.NotEmpty(t, c.summary, n)
		assert.NotNil(t, c.usage, n)
		assert.NotNil(t, c.run, n)
		var b bytes.Buffer
		c.usage(&b)
		assert.True(t, strings.HasPrefix(b.String(), "usage: dueflow "+n), "%s: %q", n, b.String())
	}
}

// dueflow help, -h and --help list every command; help <command> and
// <command> -h print the same help: usage, flags with defaults, exit codes.
// No default shows what DATABASE_URL holds.
func TestHelp(t *testing.T) {
	const secret = "postgres://owner:Hq7-Secret-Pw@db.internal:5432/prod"
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, errOut, code := runCLI(t, secret, args...)
		assert.Equal(t, 0, code, args)
		assert.Empty(t, errOut)
		assert.Contains(t, out, "usage: dueflow <command>")
		for _, n := range commandNames() {
			assert.Regexp(t, `(?m)^  `+n+`\s+\S`, out, "%v lists %s", args, n)
		}
		assert.Contains(t, out, "2  usage error")
	}
	for _, n := range commandNames() {
		t.Run(n, func(t *testing.T) {
			out, errOut, code := runCLI(t, secret, "help", n)
			assert.Equal(t, 0, code)
			assert.Empty(t, errOut)
			assert.True(t, strings.HasPrefix(out, "usage: dueflow "+n), out)
			assert.Contains(t, out, "\nflags:\n  -")
			assert.Contains(t, out, "\nexit codes:\n  0  success")
			assert.Contains(t, out, "  2  usage error")
			assert.NotContains(t, out, "Hq7")
			assert.NotContains(t, out, "db.internal")

			out2, errOut2, code := runCLI(t, secret, n, "-h")
			assert.Equal(t, 0, code)
			assert.Empty(t, out2, "-h prints on stderr")
			assert.Equal(t, out, errOut2, "help %s and %s -h agree", n, n)
			_, errOut3, _ := runCLI(t, secret, n, "--help")
			assert.Equal(t, out, errOut3)
		})
	}
	out, _, _ := runCLI(t, "", "help", "status")
	for _, want := range []string{"-json", "-watch interval", "-window duration", "(default 1h0m0s)", "-stuck-after duration", "(default 10m0s)",
		"-max-failed int", "3  problem:", "4  problem:", "5  problem:", "docs/status.schema.json"} {
		assert.Contains(t, out, want)
	}
	for _, n := range []string{"retry", "cancel"} {
		out, _, _ = runCLI(t, "", "help", n)
		assert.Contains(t, out, "  1  not applied:", n)
	}
	out, _, _ = runCLI(t, "", "help", "cancel")
	assert.Contains(t, out, "-reason string")
	out, _, _ = runCLI(t, "", "help", "console")
	assert.Contains(t, out, `(default "127.0.0.1:54323")`)
	out, _, _ = runCLI(t, "", "help", "demo")
	assert.Contains(t, out, "54322 (Postgres)")
	assert.Contains(t, out, "(default 5m0s)")
}

// Mistakes exit 2 and point to the help.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `dueflow: unknown command "frobnicate": run 'dueflow help' for the list of commands`},
		{[]string{"help", "frobnicate"}, `dueflow help: unknown command "frobnicate"`},
		{[]string{"help", "status", "tick"}, "one command at a time"},
		{[]string{}, "usage: dueflow <command>"},
		{[]string{"status", "extra"}, "dueflow status: unexpected arguments: [extra]\nrun 'dueflow help status' for its usage"},
		{[]string{"status", "--window", "0s"}, "--window must be positive"},
		{[]string{"tick", "extra"}, "run 'dueflow help tick'"},
		{[]string{"invoke"}, "--fn is required"},
		{[]string{"settle", "not-a-uuid", "--sent"}, `delivery id "not-a-uuid": not a uuid`},
		{[]string{"deliveries"}, "say which deliveries: --unknown"},
		{[]string{"register"}, "nothing to register"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"status", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"executions", "--state", "done"}, `state "done": one of`},
		{[]string{"executions", "--org", "x"}, `--org "x": not a uuid`},
		{[]string{"executions", "extra"}, "dueflow executions: unexpected arguments: [extra]\nrun 'dueflow help executions'"},
		{[]string{"executions", "--nope"}, "flag provided but not defined: -nope\nusage: dueflow executions"},
		{[]string{"execution"}, "the execution id is required"},
		{[]string{"execution", "x"}, `execution id "x": not a uuid`},
		{[]string{"retry"}, "dueflow retry: the execution id is required"},
		{[]string{"retry", "0b6c2a52-8c4f-4d4e-9a55-3f1b1c1e2d3f", "extra"}, "unexpected arguments: [extra]"},
		{[]string{"cancel", "--nope"}, "flag provided but not defined: -nope\nusage: dueflow cancel"},
		{[]string{"console", "extra"}, "dueflow console: unexpected arguments: [extra]"},
		{[]string{"console", "--addr", "0.0.0.0:1"}, "is not a loopback address"},
	}
	for _, tc := range cases {
		out, errOut, code := runCLI(t, "", tc.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tc.args, errOut)
		assert.Empty(t, out, "%v", tc.args)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	// a flag error prints the command's help once, after the error
	_, errOut, _ := runCLI(t, "", "status", "--nope")
	assert.Equal(t, 1, strings.Count(errOut, "usage: dueflow status"), errOut)
	assert.Regexp(t, regexp.MustCompile(`^flag provided but not defined: -nope\nusage: dueflow status`), errOut)
	assert.NotContains(t, errOut, "run 'dueflow help status'", "the help is already there")
}
