// Package reference embeds dueflow's optional reference domain: the migration
// set (sql/reference/*.sql) that creates the reference app's tables
// (organizations, organization_members, clients, jobs, invoices), their RLS,
// triggers and indexes, the automation_src_* views over them and the hooks.
// The demo and most tests use it. It is applied after the core (sql/,
// migrations.Apply); its files keep their place in the core's timestamp order
// too, so both sets copied into one folder (supabase/migrations) apply in
// name order as well. An app that adopts dueflow applies the core only and
// defines the views and hooks over its own tables.
package reference

import (
	"context"
	"embed"

	"github.com/dueflow/dueflow/internal/pgcluster"
	migrations "github.com/dueflow/dueflow/sql"
)

//go:embed *.sql
var files embed.FS

// Files returns the reference domain's migrations in the order they apply.
func Files() ([]migrations.File, error) {
	return migrations.FilesOf(files)
}

// Apply runs the reference domain's migrations in order, each in its own
// transaction, on a database the core is applied to. They are idempotent:
// applying them again changes nothing.
func Apply(ctx context.Context, db pgcluster.Beginner) error {
	return migrations.ApplyFS(ctx, db, files)
}
