package pgtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

// A cluster whose test binary died is stopped and removed by the next run.
func TestReapOrphans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "dueflow-pgtest-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "data"), Fast: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })

	// an owner that has exited
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.NoError(t, os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
	reapOrphans(ctx)
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "orphan directory removed")
	_, err = c.Connect(ctx, "postgres")
	assert.Error(t, err, "orphan server stopped")
}

// NewDB clones are isolated and carry the migrations.
func TestNewDBIsolated(t *testing.T) {
	a, _ := NewDB(t)
	b, _ := NewDB(t)
	ctx := context.Background()
	_, err := a.Exec(ctx, `insert into organizations (name) values ('only in a')`)
	require.NoError(t, err)
	var n int
	require.NoError(t, b.QueryRow(ctx, `select count(*) from organizations`).Scan(&n))
	assert.Zero(t, n)
	require.NoError(t, b.QueryRow(ctx, `select count(*) from pg_proc where proname = 'automation_claim'`).Scan(&n))
	assert.Equal(t, 1, n)
}

func TestMain(m *testing.M) { Main(m) }

// A preparation runs once however many tests ask for it at once, and each
// gets its error.
func TestOnceErr(t *testing.T) {
	var o onceErr
	var runs atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = o.do(func() error {
				runs.Add(1)
				return errors.New("no template")
			})
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), runs.Load())
	for _, err := range errs {
		assert.EqualError(t, err, "no template")
	}
}
