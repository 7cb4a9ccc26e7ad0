// Package replacedsystem embeds the optional migration set that feeds dueflow
// from the replaced system's own app tables (the automation_src_* views, the
// hooks, their settings tables and indexes; README.md beside it). An install
// of that system applies it after dueflow's core (sql/); it is never part of
// sql/, so upgrading dueflow never overwrites it.
package replacedsystem

import (
	"context"
	"embed"

	"github.com/dueflow/dueflow/internal/pgcluster"
	migrations "github.com/dueflow/dueflow/sql"
)

//go:embed *.sql
var files embed.FS

// Files returns the adapter's migrations in the order they apply.
func Files() ([]migrations.File, error) {
	return migrations.FilesOf(files)
}

// Apply runs the adapter's migrations in order, each in its own transaction.
// They are idempotent: applying them again changes nothing.
func Apply(ctx context.Context, db pgcluster.Beginner) error {
	return migrations.ApplyFS(ctx, db, files)
}
