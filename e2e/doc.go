// Package e2e holds dueflow's end-to-end tests and the whole-stack
// benchmark: the real function binaries under the Lambda Runtime Interface
// Emulator, rung by the pg_net stand-in from the SQL the cron jobs run,
// against a private Postgres 15 + pg_cron (internal/devstack).
//
//	go test ./e2e/
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./e2e/
package e2e
