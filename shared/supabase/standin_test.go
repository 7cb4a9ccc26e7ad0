package supabase_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/providerevents"
	"github.com/dueflow/dueflow/shared/supabase"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Both kinds of key claim a real execution through the PostgREST stand-in,
// which plays the gateway's rules: the secret key in apikey alone, the
// legacy service_role JWT in apikey and Authorization. An anon key or an
// unknown secret key claims nothing.
func TestClaimWithEitherKeyThroughStandIn(t *testing.T) {
	const jwtSecret = "local-jwt-secret-local-jwt-secret-0000"
	secretKey := postgrest.NewSecretKey()
	sign := func(role string) string {
		k, err := postgrest.SignJWT(jwtSecret, role, time.Hour)
		require.NoError(t, err)
		return k
	}
	cases := []struct {
		name, key string
		status    int // 0 = claimed
	}{
		{"secret key", secretKey, 0},
		{"legacy service_role JWT", sign("service_role"), 0},
		{"legacy anon JWT", sign("anon"), 401},
		{"unknown secret key", postgrest.NewSecretKey(), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := pgtest.NewDB(t)
			srv := httptest.NewServer(postgrest.New(db, jwtSecret, slog.New(slog.NewJSONHandler(io.Discard, nil))).WithSecretKey(secretKey))
			defer srv.Close()
			_, _, execs := pgtest.OverdueInvoices(t, db, 1)
			_, err := db.Exec(ctx, `update automation_execution_logs set next_attempt_at = now() - interval '1 second'`)
			require.NoError(t, err)

			c, err := supabase.New(supabase.Config{URL: srv.URL, Key: tc.key, Timeout: 5 * time.Second})
			require.NoError(t, err)
			docs, err := c.Claim(ctx, automation.ClaimRequest{Action: automation.ActionInvoiceReminder, IDs: execs, Limit: 10, LeaseSeconds: 60})
			if tc.status != 0 {
				var re *supabase.RPCError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tc.status, re.Status)
				assert.Equal(t, 0, pgtest.Int(t, db, `select count(*)::int from automation_execution_logs where status = 'running'`))
				return
			}
			require.NoError(t, err)
			assert.Len(t, docs, 1)
			assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_execution_logs where status = 'running'`))
		})
	}
}

// RecordProviderEvents reaches automation_record_provider_events through
// the PostgREST stand-in with the contract's JSON: a link opt-out of a real
// client is recorded, its repeat a duplicate, a delivery event for a
// message id nobody sent unmatched.
func TestRecordProviderEventsThroughStandIn(t *testing.T) {
	ctx := context.Background()
	db, _ := pgtest.NewDB(t)
	secretKey := postgrest.NewSecretKey()
	srv := httptest.NewServer(postgrest.New(db, "local-jwt-secret-local-jwt-secret-0000", slog.New(slog.NewJSONHandler(io.Discard, nil))).WithSecretKey(secretKey))
	defer srv.Close()
	org := pgtest.AllDayOrg(t, db)
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "ada@a.test"})
	c, err := supabase.New(supabase.Config{URL: srv.URL, Key: secretKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	var store providerevents.Store = c
	link := providerevents.Event{Kind: "opt_out", Provider: "link", EventID: "sha256-of-token", OrganizationID: org.String(),
		ClientID: client.String(), Channel: "email", OccurredAt: time.Now()}
	stray := providerevents.Event{Kind: "delivery", Provider: "mailgun", EventID: "ev-1", Channel: "email",
		ProviderMessageID: "nobody@mg.test", Status: "delivered"}
	got, err := store.RecordProviderEvents(ctx, []providerevents.Event{link, link, stray})
	require.NoError(t, err)
	assert.Equal(t, providerevents.Recorded{Recorded: 1, Duplicates: 1, Unmatched: 1}, got)
	assert.Equal(t, 1, pgtest.Int(t, db, `select count(*)::int from automation_opt_outs where organization_id = $1 and client_id = $2::text`, org, client))
}
