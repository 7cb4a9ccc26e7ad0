// Package replacedsystem embeds the optional migration set that feeds dueflow
// from the replaced system's own app tables (the automation_src_* views, the
// hooks, their settings tables and indexes; README.md beside it). An install
// of that system applies it after dueflow's core (sql/); it is never part of
// sql/, so upgrading dueflow never overwrites it. internal/pgcluster.ApplyFS
// applies FS() from Go.
package replacedsystem

import (
	"embed"
	"io/fs"

	sqlfiles "github.com/dueflow/dueflow/sql"
)

//go:embed *.sql
var files embed.FS

// FS returns the adapter's migrations (the *.sql files at its top).
func FS() fs.FS { return files }

// Files returns the adapter's migrations in the order they apply.
func Files() ([]sqlfiles.File, error) {
	return sqlfiles.FilesOf(files)
}
