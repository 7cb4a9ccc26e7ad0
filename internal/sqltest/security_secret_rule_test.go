package sqltest_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/webhook"
)

// The signing secret has one rule in Go (webhook.ParseSecret: config, the
// verifier, the signer, devstack) and one in SQL
// (automation_register_endpoint, which stores it for the dispatcher). On
// every case they agree, except where sqlOnly says why the SQL refuses a
// secret the Go rule takes: then that disagreement is asserted as it is,
// so that a change to either rule shows here.
func TestWebhookSecretRuleGoAgreesWithSQL(t *testing.T) {
	db, _ := pgtest.NewDB(t)
	key := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	cases := []struct {
		name, secret string
		ok           bool
		sqlOnly      string // why SQL refuses what Go takes ("" = they agree)
	}{
		{"32 bytes", "whsec_" + key(32), true, ""},
		{"24 bytes", "whsec_" + key(24), true, ""},
		{"64 bytes", "whsec_" + key(64), true, ""},
		{"regression secret", testSecret, true, ""},
		{"generated", webhook.NewSecret(), true, ""},
		{"16 bytes", "whsec_" + key(16), false, ""},
		{"23 bytes", "whsec_" + key(23), false, ""},
		{"65 bytes", "whsec_" + key(65), false, ""},
		{"8 bytes", "whsec_" + key(8), false, ""},
		{"empty key", "whsec_", false, ""},
		{"no prefix", key(32), false, ""},
		{"upper-case prefix", "WHSEC_" + key(32), false, ""},
		{"padding left out", "whsec_" + strings.TrimRight(key(32), "="), false, ""},
		{"padding doubled", "whsec_" + key(32) + "=", false, ""},
		{"url-safe alphabet", "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))), false, ""},
		{"not base64", "whsec_!!!notbase64!!!", false, ""},
		{"line break inside", "whsec_" + key(32)[:20] + "\n" + key(32)[20:], false, ""},
		{"space inside", "whsec_" + key(32)[:20] + " " + key(32)[20:], false, ""},
		{"trailing line break", "whsec_" + key(32) + "\n", false, ""},
		{"padding in the middle", "whsec_" + key(16) + key(16), false, ""},
		{"two secrets (a rotation)", "whsec_" + key(32) + " whsec_" + key(32), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, goErr := webhook.ParseSecret(tc.secret)
			tx, err := db.Begin(t.Context())
			require.NoError(t, err)
			defer tx.Rollback(t.Context()) //nolint:errcheck // nothing to keep
			_, sqlErr := tx.Exec(t.Context(), `select public.automation_register_endpoint($1, 'https://fn.example.com/', $2)`,
				automation.ActionSendReminder, tc.secret)
			if sqlErr != nil {
				var pe *pgconn.PgError
				require.ErrorAs(t, sqlErr, &pe)
				assert.Equal(t, "22023", pe.Code, "a refusal, not a failure: %v", sqlErr)
			}
			assert.Equal(t, tc.ok, goErr == nil, "Go: %v", goErr)
			wantSQL := tc.ok && tc.sqlOnly == ""
			assert.Equal(t, wantSQL, sqlErr == nil, "SQL: %v (%s)", sqlErr, tc.sqlOnly)
		})
	}
}
