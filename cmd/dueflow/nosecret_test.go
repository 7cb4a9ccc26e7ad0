package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No command shows the database password: not as the --db default in -h or
// after a flag error, not in a connection or parse error, whether the
// string comes from $DATABASE_URL or from --db. The real binary runs, with
// DATABASE_URL holding a recognisable password.
func TestNoCommandShowsTheDatabasePassword(t *testing.T) {
	const password = "Zq9-DbPassw0rd-LEAK"
	bin := buildDueflow(t)
	closed := "postgres://owner:" + password + "@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/postgres?sslmode=disable"

	cases := []struct {
		args []string
		env  string // DATABASE_URL
		want string // on stderr: the command did what it should
		code int
	}{
		{[]string{"status", "-h"}, closed, "Postgres connection string (default: $DATABASE_URL when set, else the local stack)", 0},
		{[]string{"tick", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"register", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"tick", "--typo"}, closed, "flag provided but not defined: -typo", 2},
		{[]string{"status", "--typo"}, closed, "flag provided but not defined: -typo", 2},
		{[]string{"register", "--bogus"}, closed, "flag provided but not defined: -bogus", 2},
		{[]string{"demo", "-h"}, closed, "-once", 0},
		{[]string{"demo", "--bogus"}, closed, "flag provided but not defined: -bogus", 2},
		{[]string{"invoke", "-h"}, closed, "-fn", 0},
		{[]string{"deliveries", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"deliveries", "--bogus"}, closed, "flag provided but not defined: -bogus", 2},
		{[]string{"settle", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"deliveries", "--unknown"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"status"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"console", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"executions", "-h"}, closed, "$DATABASE_URL when set", 0},
		{[]string{"console"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"executions", "--state", "failed"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"execution", "0b6c2a52-8c4f-4d4e-9a55-3f1b1c1e2d3f"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"retry", "0b6c2a52-8c4f-4d4e-9a55-3f1b1c1e2d3f"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"cancel", "0b6c2a52-8c4f-4d4e-9a55-3f1b1c1e2d3f", "--by", "ops"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"tick"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"register", "--action", "send-reminder", "--url", "https://fn.example.test/"}, closed, "connect to 127.0.0.1:", 1},
		{[]string{"status", "--db", closed}, "", "connect to 127.0.0.1:", 1},
		{[]string{"status", "--db", "postgres://owner:" + password + " x@db host/x"}, "", "--db postgres://***@db host/x is not a valid Postgres connection string", 1},
		{[]string{"tick"}, "host=127.0.0.1 port=" + strconv.Itoa(closedPort(t)) + " user=owner password=" + password, "connect to 127.0.0.1:", 1},
		{[]string{"tick"}, "host=127.0.0.1 port=notaport password=" + password, "--db host=127.0.0.1 port=notaport password=*** is not a valid Postgres connection string", 1},
	}
	for i, tc := range cases {
		t.Run(strconv.Itoa(i)+" "+tc.args[0], func(t *testing.T) { // the args may hold the password
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+tc.env)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.code, code, stderr.String())
			assert.Contains(t, stderr.String(), tc.want)
			assert.NotContains(t, stdout.String()+stderr.String(), password)
			assert.NotContains(t, stdout.String()+stderr.String(), "Zq9", "not even part of it")
		})
	}
}
