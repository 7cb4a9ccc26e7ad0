package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/localports"
)

// expectedDemoLine is what one demo cycle (plus the follow-up of the
// 1-minute delay step) ends with, for internal/demodata's data.
const expectedDemoLine = "demo: 15 executions: 12 completed, 2 skipped, 1 failed; 11 emails, 5 sms sent"

// freePorts returns n distinct free ports outside the demo's fixed ones.
func freePorts(t *testing.T, n int) []int {
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := localports.FreePort()
		require.NoError(t, err)
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// processesUnder lists live processes whose command line mentions dir.
func processesUnder(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue // zombie: already exited
			}
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// The whole demo, once, on free ports: the summary line is the expected one
// and nothing the demo started survives it. (About 80 s: the multi-step
// workflow's delay step is one minute.)
func TestDemoOnce(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	// Under os.TempDir and traversable, so that the postgres user reaches it when we are root.
	state, err := os.MkdirTemp("", "dueflow-demo-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(state, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(state) })

	p := freePorts(t, 4)
	opts := demoOptions{Once: true, StateDir: state, Timeout: 4 * time.Minute,
		Ports: demoPorts{Postgres: p[0], Gateway: p[1], MailpitSMTP: p[2], MailpitUI: p[3]}}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var out bytes.Buffer
	line, err := runDemo(ctx, root, opts, &out)
	require.NoError(t, err, out.String())
	assert.Equal(t, expectedDemoLine, line, out.String())

	text := out.String()
	assert.Contains(t, text, fmt.Sprintf("emails:   http://127.0.0.1:%d (Mailpit's API; 11 messages in the inbox)", p[3]))
	assert.Regexp(t, `console:  http://127\.0\.0\.1:\d+ \(executions`, text, "the summary points to the console")
	assert.Contains(t, text, "sms:      5 recorded by the Telnyx-compatible sink")
	assert.Contains(t, text, "\nopt-outs: 1 unsubscribe, 1 STOP, 1 bounce suppressed (provider-events: http://127.0.0.1:", "the providers' side played through provider-events")
	assert.Contains(t, text, "waiting for their next step", "the delay step made the demo wait for a follow-up cycle")
	assert.Contains(t, text, "stopped: every process the demo started has exited")
	_, err = os.Stat(functionEnvFile(state))
	assert.ErrorIs(t, err, os.ErrNotExist, "function.env is removed when the stack stops")

	assert.Empty(t, processesUnder(state), "processes of the demo still running")
	for _, port := range p {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "port %d still accepts connections", port)
	}
}

// A fixed port held by a server: the demo names the process and stops at
// once, before it installs or starts anything.
func TestDemoNamesTheProcessHoldingItsPort(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0") // the test's own listener, never on a demo port
	require.NoError(t, err)
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	p := freePorts(t, 3)
	opts := demoOptions{Once: true, StateDir: t.TempDir(), Timeout: time.Minute,
		Ports: demoPorts{Postgres: p[0], Gateway: held, MailpitSMTP: p[1], MailpitUI: p[2]}}
	var out bytes.Buffer
	start := time.Now()
	line, err := runDemo(t.Context(), root, opts, &out)
	require.Error(t, err)
	assert.Empty(t, line)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, err.Error(), fmt.Sprintf("port %d is taken by a listening server: LISTEN 127.0.0.1:%d (pid %d: ", held, held, os.Getpid()))
	assert.NotContains(t, out.String(), "starting the local stack")
	assert.Empty(t, processesUnder(opts.StateDir))
}
