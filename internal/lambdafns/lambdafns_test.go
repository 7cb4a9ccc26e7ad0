package lambdafns

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamesOfThisRepository(t *testing.T) {
	names, err := Names(filepath.Join("..", ".."))
	require.NoError(t, err)
	assert.Equal(t, []string{"invoice-reminder", "provider-events", "run-workflow", "send-reminder"}, names)
}

func TestNamesWithoutActions(t *testing.T) {
	root := t.TempDir()
	names, err := Names(root)
	require.NoError(t, err)
	assert.Empty(t, names, "no functions/ directory")
	require.NoError(t, os.MkdirAll(filepath.Join(root, Dir, "probe"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, Dir, ".hidden"), 0o755))
	names, err = Names(root)
	require.NoError(t, err)
	assert.Equal(t, []string{"probe"}, names, "actions are listed only with functions/action")
}

func TestPackageAndEnv(t *testing.T) {
	assert.Equal(t, "./functions/action", Package("invoice-reminder"))
	assert.Equal(t, "./functions/provider-events", Package("provider-events"))
	assert.Equal(t, []string{"DUEFLOW_ACTION=run-workflow"}, Env("run-workflow"))
	assert.Empty(t, Env("provider-events"))
}
