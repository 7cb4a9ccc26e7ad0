// Package migrations embeds dueflow's SQL migrations (sql/*.sql) and applies
// them in lexical order. The same files run with psql or the Supabase CLI.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

//go:embed *.sql
var files embed.FS

// File is one migration.
type File struct {
	Name string // e.g. 20261129000100_domain.sql
	SQL  string
}

// Files returns every migration in the order they apply.
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

// Apply runs every migration in order, each in its own transaction. The
// migrations are idempotent, so applying them again is safe.
func Apply(ctx context.Context, db pgcluster.Beginner) error {
	return ApplyFS(ctx, db, files)
}

// ApplyFS runs the *.sql files of fsys (FilesOf) in order, each in its own
// transaction.
func ApplyFS(ctx context.Context, db pgcluster.Beginner, fsys fs.FS) error {
	fl, err := FilesOf(fsys)
	if err != nil {
		return err
	}
	for _, f := range fl {
		if err := pgcluster.ApplySQL(ctx, db, f.Name, f.SQL); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
	}
	return nil
}
