package migrations_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/supacompat"
	migrations "github.com/dueflow/dueflow/sql"
)

func TestFilesOrdered(t *testing.T) {
	fl, err := migrations.Files()
	require.NoError(t, err)
	require.NotEmpty(t, fl)
	for i := 1; i < len(fl); i++ {
		require.Less(t, fl[i-1].Name, fl[i].Name)
	}
	for _, f := range fl {
		require.Regexp(t, `^\d{14}_[a-z0-9_]+\.sql$`, f.Name)
	}
}

// Re-applying the compatibility SQL and every migration must be a no-op.
func TestMigrationsRerun(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	ctx := context.Background()
	require.NoError(t, supacompat.Apply(ctx, pool))
	require.NoError(t, migrations.Apply(ctx, pool))
	require.NoError(t, migrations.Apply(ctx, pool))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from pg_tables where schemaname = 'public' and not rowsecurity`).Scan(&n))
	require.Zero(t, n, "every public table has RLS enabled")
}
