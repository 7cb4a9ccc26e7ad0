// Package sqlfiles embeds dueflow's core SQL migrations (sql/*.sql) and lists
// them in the order they apply (lexical). The same files run with psql or the
// Supabase CLI; internal/pgcluster.ApplyFS applies them from Go. The core
// never creates, alters or depends on the app's tables; the optional
// reference domain (sql/reference, package reference) and adapters
// (sql/adapters) are applied after it. The package holds SQL and this embed
// only: it imports nothing of dueflow.
package sqlfiles

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.sql
var files embed.FS

// File is one migration.
type File struct {
	Name string // e.g. 20261129000200_automation_tables.sql
	SQL  string
}

// FS returns the core migrations (the *.sql files at its top).
func FS() fs.FS { return files }

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
