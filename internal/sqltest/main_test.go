// Package sqltest_test holds the Go tests and benchmarks of dueflow's SQL
// (sql/*.sql, sql/reference), one file per bug class where a file is about
// one (docs/bug-classes.md maps every bug of the replaced system to its
// tests). Each test runs on a private Postgres 15 + pg_cron cluster, one
// cloned database per test.
package sqltest_test

import (
	"testing"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
