package pgcluster_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

// Start, pg_cron settings, restart on the same data directory and port, Stop
// leaving no process behind.
func TestStartRestartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base, err := os.MkdirTemp("", "dueflow-pgcluster-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	dir := base + "/data"

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fast: true})
	require.NoError(t, err)
	port := c.Port()
	require.NotZero(t, port)
	assert.Contains(t, c.DSN("postgres"), "127.0.0.1:"+strconv.Itoa(port))

	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	require.NoError(t, err)
	settings := map[string]string{}
	for _, name := range []string{"shared_preload_libraries", "cron.database_name", "cron.use_background_workers", "listen_addresses", "server_version_num",
		"pg_stat_statements.track", "auto_explain.log_min_duration"} {
		var v string
		require.NoError(t, conn.QueryRow(ctx, "select current_setting($1)", name).Scan(&v))
		settings[name] = v
	}
	assert.Equal(t, "pg_cron,pg_stat_statements,auto_explain", settings["shared_preload_libraries"])
	// loaded for profiles, off: they cost the other work nothing
	assert.Equal(t, "none", settings["pg_stat_statements.track"])
	assert.Equal(t, "-1", settings["auto_explain.log_min_duration"])
	assert.Equal(t, pgcluster.CronDatabase, settings["cron.database_name"])
	assert.Equal(t, "on", settings["cron.use_background_workers"])
	assert.Equal(t, "127.0.0.1", settings["listen_addresses"])
	assert.True(t, strings.HasPrefix(settings["server_version_num"], "15"))
	var ext int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from pg_extension where extname = 'pg_cron'").Scan(&ext))
	assert.Equal(t, 1, ext)
	_, err = conn.Exec(ctx, "create table keep_me (id int); insert into keep_me values (1)")
	require.NoError(t, err)
	require.NoError(t, pgcluster.ApplySQL(ctx, conn, "script", "create table t1 (id int); insert into t1 values (1), (2);"))
	err = pgcluster.ApplySQL(ctx, conn, "broken", "create table t2 (id int); select nope;")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken")
	var t2 *string
	require.NoError(t, conn.QueryRow(ctx, "select to_regclass('t2')::text").Scan(&t2))
	assert.Nil(t, t2, "a failed script is rolled back")
	conn.Close(ctx)

	require.NoError(t, c.Stop(ctx))
	assert.False(t, serverRunning(dir), "no server process after Stop")

	// restart on the same directory and port keeps the data
	c2, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Stop(context.Background()) })
	assert.Equal(t, port, c2.Port())
	conn, err = pgx.Connect(ctx, c2.DSN("postgres"))
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from keep_me").Scan(&n))
	assert.Equal(t, 1, n)
	conn.Close(ctx)
	require.NoError(t, c2.Stop(ctx))
	assert.False(t, serverRunning(dir))
}

func serverRunning(dir string) bool {
	out, _ := exec.Command("pgrep", "-f", "postgres -D "+dir).Output()
	return strings.TrimSpace(string(out)) != ""
}
