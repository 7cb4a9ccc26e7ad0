package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestLeftoverPostmaster(t *testing.T) {
	dir := t.TempDir()
	_, ok := leftoverPostmaster(dir)
	assert.False(t, ok, "no postmaster.pid")

	// a live process that is not a postgres of this directory
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"+dir+"\n"), 0o600))
	_, ok = leftoverPostmaster(dir)
	assert.False(t, ok, "the pid is not a postgres")

	// the running test cluster is recognised by its data directory
	c := pgtest.Cluster(t)
	pid, ok := leftoverPostmaster(c.Dir())
	assert.True(t, ok)
	assert.Positive(t, pid)
	_, ok = leftoverPostmaster(dir)
	assert.False(t, ok)
}
