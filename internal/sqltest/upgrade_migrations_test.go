package sqltest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

func TestFilesOrdered(t *testing.T) {
	fl, err := sqlfiles.Files()
	require.NoError(t, err)
	require.NotEmpty(t, fl)
	for i := 1; i < len(fl); i++ {
		require.Less(t, fl[i-1].Name, fl[i].Name)
	}
	for _, f := range fl {
		require.Regexp(t, `^\d{14}_[a-z0-9_]+\.sql$`, f.Name)
	}
}

// Re-applying the compatibility SQL, the core and the reference domain must
// be a no-op.
func TestMigrationsRerun(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	ctx := context.Background()
	catalog, data := pgtest.Catalog(t, pool), pgtest.Digest(t, pool)
	require.NoError(t, pgtest.Prepare(ctx, pool))
	require.NoError(t, pgtest.Prepare(ctx, pool))
	assert.Equal(t, catalog, pgtest.Catalog(t, pool))
	assert.Equal(t, data, pgtest.Digest(t, pool))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from pg_tables where schemaname = 'public' and not rowsecurity`).Scan(&n))
	require.Zero(t, n, "every public table has RLS enabled")
}
