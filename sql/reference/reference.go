// Package reference embeds dueflow's optional reference domain: the migration
// set (sql/reference/*.sql) that creates the reference app's tables
// (organizations, organization_members, clients, jobs, invoices), their RLS,
// triggers and indexes, the automation_src_* views over them and the hooks.
// The demo and most tests use it. It is applied after the core (sql/,
// package sqlfiles); its files keep their place in the core's timestamp order
// too, so both sets copied into one folder (supabase/migrations) apply in
// name order as well. An app that adopts dueflow applies the core only and
// defines the views and hooks over its own tables. internal/pgcluster.ApplyFS
// applies FS() from Go.
package reference

import (
	"embed"
	"io/fs"

	sqlfiles "github.com/dueflow/dueflow/sql"
)

//go:embed *.sql
var files embed.FS

// FS returns the reference domain's migrations (the *.sql files at its top).
func FS() fs.FS { return files }

// Files returns the reference domain's migrations in the order they apply.
func Files() ([]sqlfiles.File, error) {
	return sqlfiles.FilesOf(files)
}
