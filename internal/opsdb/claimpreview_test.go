package opsdb_test

import (
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/opsdb"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
)

// The console's claim preview (automation_claim_preview) and the real claim
// (automation_claim_rows) build their documents with one SQL function,
// automation_claim_documents; the preview then masks values. The key paths
// of the two documents must be equal: a mask that adds, drops or renames a
// key fails TestClaimPreviewParity.

// keyPaths lists the key paths of a JSON document: "a.b" for objects,
// "a[]" for the elements of an array.
func keyPaths(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			keyPaths(p, e, out)
		}
	case []any:
		for _, e := range x {
			out[prefix+"[]"] = true
			keyPaths(prefix+"[]", e, out)
		}
	}
}

func paths(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(doc, &v))
	set := map[string]bool{}
	keyPaths("", v, set)
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// The claim preview of an execution's page has the key paths of the
// document the real claim hands its function (every array and optional
// object filled: a delivery, consent with an opt-out, a suppression and an
// SMS notice, a scheduled execution's figures, a job's execution), and
// shows no lease token, address or number.
func TestClaimPreviewParity(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	ctx := context.Background()
	org, _, execs := pgtest.OverdueInvoices(t, db, 3)
	client := pgtest.Text(t, db, `select client_id from automation_execution_logs where id = $1`, execs[0])
	pgtest.Exec(t, db, `insert into automation_opt_outs (organization_id, client_id, channel, source) values ($1, $2, 'email', 'link')`, org, client)
	pgtest.Exec(t, db, `insert into automation_suppressions (organization_id, channel, address, reason, provider) values
		($1, 'sms', '+15555550123', 'bounced', 'telnyx'), ($1, 'email', 'ada@client.test', 'complained', 'mailgun')`, org)
	pgtest.Exec(t, db, `insert into automation_sms_notices (organization_id, address, told_at) values ($1, '+15555550123', now())`, org)
	pgtest.Exec(t, db, `insert into automation_deliveries (execution_id, organization_id, channel, recipient, provider, idempotency_key, status, provider_message_id)
		select id, organization_id, c, r, 'p', id || c, 'sent', 'm-' || c from automation_execution_logs,
		       (values ('email', 'ada@client.test'), ('sms', '+15555550123')) v(c, r) where id = any($1)`, execs)
	pgtest.Exec(t, db, `update automation_execution_logs set trigger_type = 'scheduled', action = 'run-workflow' where id = $1`, execs[1])
	// a job's execution: its document has the job (its address hidden)
	pgtest.Exec(t, db, `with j as (insert into jobs (organization_id, client_id, title, status, scheduled_start, address)
		  values ($2, $3::uuid, 'Boiler', 'in_progress', now(), '12 Elm Street') returning id)
		update automation_execution_logs e set trigger_type = 'stale_job', action = 'send-reminder', subject_type = 'job',
		  subject_id = j.id::text from j where e.id = $1`, execs[2], org, client)

	for _, c := range []struct {
		action string
		id     uuid.UUID
	}{{automation.ActionInvoiceReminder, execs[0]}, {automation.ActionRunWorkflow, execs[1]}, {automation.ActionSendReminder, execs[2]}} {
		pgtest.MakeDue(t, db)
		// the raw documents: automation.Claimed would drop keys it does not know
		var claimed []byte
		require.NoError(t, db.QueryRow(ctx, `select coalesce(jsonb_agg(c), '[]') from automation_claim($1, $2::uuid[], 1, 60) c`,
			c.action, []string{c.id.String()}).Scan(&claimed))
		var docs []json.RawMessage
		require.NoError(t, json.Unmarshal(claimed, &docs))
		require.Len(t, docs, 1, c.action)
		real := paths(t, docs[0])
		require.Contains(t, real, "deliveries[].recipient")
		require.Contains(t, real, "consent.sms_told[]")
		require.Contains(t, real, "consent.blocked[].address")
		switch c.action {
		case automation.ActionRunWorkflow:
			require.Contains(t, real, "figures.open_balances[].amount")
		case automation.ActionSendReminder:
			require.Contains(t, real, "job.address")
		}

		d, err := opsdb.GetDetail(ctx, db, c.id)
		require.NoError(t, err)
		require.Empty(t, d.ClaimError)
		preview := paths(t, []byte(d.Claim))
		assert.Equal(t, real, preview, "the claim preview (automation_claim_preview) has drifted from automation_claim_rows")

		var doc struct {
			Execution struct {
				LeaseToken string `json:"lease_token"`
			} `json:"execution"`
		}
		require.NoError(t, json.Unmarshal([]byte(d.Claim), &doc))
		assert.Equal(t, "(hidden)", doc.Execution.LeaseToken)
		for _, secret := range []string{"ada@client.test", "5555550123", "office@", "Elm Street", pgtest.Text(t, db, `select lease_token::text from automation_execution_logs where id = $1`, c.id)} {
			assert.NotContains(t, d.Claim, secret)
		}
		assert.Contains(t, d.Claim, `"recipient": "a…@c….test"`)
	}
}
