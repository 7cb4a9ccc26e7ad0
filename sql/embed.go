// Package sqlfiles embeds dueflow's SQL migrations and lists them in the
// order they apply (lexical): the core (sql/*.sql, FS), the optional
// reference domain (sql/reference, ReferenceFS) and the optional adapter
// to the replaced system's own tables (sql/adapters/replaced_system,
// ReplacedSystemFS). The same files run with psql or the Supabase CLI;
// internal/pgcluster.ApplyFS applies them from Go.
//
// The core never creates, alters or depends on the app's tables. The
// reference domain creates the reference app's tables, their RLS, triggers
// and indexes, the automation_src_* views over them and the hooks; the demo
// and most tests use it, and its files keep their place in the core's
// timestamp order, so both sets copied into one folder (supabase/migrations)
// apply in name order as well. An app that adopts dueflow applies the core
// only and defines the views and hooks over its own tables; an install of
// the replaced system applies the adapter after the core (never part of the
// core, so upgrading dueflow never overwrites it). The package holds SQL
// and this embed only: it imports nothing of dueflow.
package sqlfiles

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.sql
var files embed.FS

//go:embed reference/*.sql
var referenceFiles embed.FS

//go:embed adapters/replaced_system/*.sql
var replacedSystemFiles embed.FS

// File is one migration.
type File struct {
	Name string // e.g. 20261129000200_automation_tables.sql
	SQL  string
}

// FS returns the core migrations (the *.sql files at its top).
func FS() fs.FS { return files }

// ReferenceFS returns the reference domain's migrations (sql/reference).
func ReferenceFS() fs.FS { return sub(referenceFiles, "reference") }

// ReplacedSystemFS returns the replaced system's adapter
// (sql/adapters/replaced_system; its README.md says what it defines).
func ReplacedSystemFS() fs.FS { return sub(replacedSystemFiles, "adapters/replaced_system") }

// sub is dir of fsys, which embeds it: fs.Sub fails only on an invalid
// path, a constant here.
func sub(fsys fs.FS, dir string) fs.FS {
	s, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// Files returns every core migration in the order they apply.
func Files() ([]File, error) {
	return FilesOf(files)
}

// FilesOf returns the *.sql files at the top of fsys in the order they
// apply (lexical), e.g. an optional migration set of sql/adapters.
func FilesOf(fsys fs.FS) ([]File, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: list: %w", err)
	}
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", n, err)
		}
		out = append(out, File{Name: n, SQL: string(b)})
	}
	return out, nil
}
