package render_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The Lambda runtime (provided.al2023) has no /usr/share/zoneinfo: without
// the embedded database every organisation's times would silently be
// rendered in UTC (location falls back to UTC for an unknown zone).
func TestTimeZoneDatabaseEmbedded(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/dueflow/dueflow/shared/render").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, strings.Fields(string(out)), "time/tzdata")
}
