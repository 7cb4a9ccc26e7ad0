package sqltest_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// sourceLines calls fn for every non-comment line of the production (non
// test) files under dirs with one of the extensions.
func sourceLines(t *testing.T, dirs []string, exts []string, fn func(file string, n int, line string)) {
	t.Helper()
	root := repoRoot(t)
	seen := 0
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			ok := false
			for _, x := range exts {
				ok = ok || strings.HasSuffix(path, x)
			}
			if !ok {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			seen++
			for i, line := range strings.Split(string(b), "\n") {
				s := strings.TrimSpace(line)
				if strings.HasPrefix(s, "//") || strings.HasPrefix(s, "--") {
					continue
				}
				fn(strings.TrimPrefix(path, root+"/"), i+1, line)
			}
			return nil
		})
		require.NoError(t, err, d)
	}
	require.Positive(t, seen)
}

// Bug 6 (placeholder recipients when a lookup fails): no production code or
// SQL holds a placeholder address or number to fall back on.
func TestNoPlaceholderRecipientsInSource(t *testing.T) {
	t.Parallel()
	placeholder := regexp.MustCompile(`(?i)["'](client|customer|user|test|noreply|no-reply)?@?[a-z0-9._-]*@example\.(com|org|net)["']|["']\+?1?234567890["']|["']\+?1?5555555555["']`)
	sourceLines(t, []string{"sql", "shared", "functions"}, []string{".go", ".sql"}, func(file string, n int, line string) {
		if m := placeholder.FindString(line); m != "" {
			t.Errorf("%s:%d: placeholder recipient %s", file, n, m)
		}
	})
	assert.True(t, placeholder.MatchString(`to := "client@example.com"`))
	assert.True(t, placeholder.MatchString(`coalesce(c.phone, '+1234567890')`))
}

// Bug 6 (delays done with an in-process setTimeout): the functions never
// sleep; a delay step is a snooze stored in the database.
func TestNoInProcessDelays(t *testing.T) {
	t.Parallel()
	sleep := regexp.MustCompile(`\btime\.Sleep\(`)
	sourceLines(t, []string{"shared/engine", "shared/function", "functions"}, []string{".go"}, func(file string, n int, line string) {
		if sleep.MatchString(line) {
			t.Errorf("%s:%d: in-process sleep: %s", file, n, strings.TrimSpace(line))
		}
	})
}

// Bug 6, in the database: when the client's address or number is missing,
// the claim document says so (empty), never a stand-in; likewise for an
// organisation without a sender address or phone number.
func TestClaimHasNoStandInRecipient(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	pgtest.Exec(t, db, `update organizations set sender_email = '', phone = '' where id = $1`, org)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -3})
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue"})
	require.Equal(t, 1, pgtest.Int(t, db, `select check_overdue_invoices()`))
	pgtest.MakeDue(t, db)
	got := pgtest.Claim(t, db, automation.ActionInvoiceReminder, pgtest.ExecutionIDs(t, db, wf), 10, 60)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Client)
	assert.Empty(t, got[0].Client.Email)
	assert.Empty(t, got[0].Client.Phone)
	assert.Empty(t, got[0].Organization.SenderEmail)
	assert.Empty(t, got[0].Organization.Phone)
}
