package sqltest_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/automation"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// installBody installs the definition of public.<fn> in migration file
// under schema (its body names every object with its schema, so it runs
// there unchanged), edited by edit when not nil.
func installBody(b *testing.B, pool *pgxpool.Pool, file, fn, schema string, edit func(string) string) {
	b.Helper()
	files, err := sqlfiles.Files()
	require.NoError(b, err)
	var body string
	for _, f := range files {
		if f.Name == file {
			body = regexp.MustCompile(`(?s)create or replace function public\.` + fn + `\(.*?\n\$\$;`).FindString(f.SQL)
		}
	}
	require.NotEmpty(b, body, "%s in %s", fn, file)
	body = strings.Replace(body, "public."+fn+"(", schema+"."+fn+"(", 1)
	if edit != nil {
		body = edit(body)
	}
	pgtest.Exec(b, pool, `create schema if not exists `+schema)
	pgtest.Exec(b, pool, body)
}

// withoutCount drops automation_report's `where (select count(*) from dl) >= 0`.
func withoutCount(b *testing.B) func(string) string {
	cut := regexp.MustCompile(`(?s)(left join upd on upd\.n = j\.n)\s*(?:--[^\n]*\n\s*)*where \(select count\(\*\) from dl\) >= 0;`)
	return func(body string) string {
		require.Regexp(b, cut, body)
		return cut.ReplaceAllString(body, "$1;")
	}
}

// BenchmarkReportBodies times automation_report as it is (public), the
// same without its `where (select count(*) from dl) >= 0`, and the
// 20261202001400 body before its parts were cut out, alternated per batch
// in one database (each batch: 100 claimed per body, a delivery begun for each, not
// timed; then 100 outcomes to each body, the order rotating): completed
// with the delivery sent (4 in 10), retry (3), snoozed (2), deferred retry
// (1). It reports ms per 100 outcomes of each and their ratios to the body
// as it is.
func BenchmarkReportBodies(b *testing.B) {
	pool := benchDB(b)
	resetBacklog(b, pool)
	installBody(b, pool, "20261203000600_report_parts.sql", "automation_report", "bench_nocount", withoutCount(b))
	installBody(b, pool, "20261202001400_rpc_speed.sql", "automation_report", "bench_uncut", nil)
	schemas := []string{"public", "bench_nocount", "bench_uncut"}
	snooze := time.Now().Add(time.Hour)
	outcomes := func(claimed []automation.Claimed) string {
		outs := make([]automation.Outcome, len(claimed))
		for i, c := range claimed {
			o := automation.Outcome{ExecutionID: c.Execution.ID, LeaseToken: c.Execution.LeaseToken, ActionsExecuted: 1}
			switch i % 10 {
			case 0, 1, 2, 3:
				o.Status = automation.OutcomeCompleted
				o.Deliveries = []automation.DeliveryResult{{IdempotencyKey: automation.IdempotencyKey(c.Execution.ID, 0, "email"),
					Status: automation.DeliverySent, Provider: "smtp", ProviderMessageID: "m-" + c.Execution.ID.String()}}
			case 4, 5, 6:
				o.Status, o.ErrorCode = automation.OutcomeRetry, automation.CodeProviderRetryable
			case 7, 8:
				o.Status, o.StepIndex, o.SnoozeUntil = automation.OutcomeSnoozed, 1, &snooze
			default:
				o.Status, o.ErrorCode, o.Deferred = automation.OutcomeRetry, automation.CodeProviderRetryable, true
			}
			outs[i] = o
		}
		raw, err := json.Marshal(outs)
		require.NoError(b, err)
		return string(raw)
	}
	took := make([]time.Duration, len(schemas))
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		claimed := pgtest.Claim(b, pool, automation.ActionInvoiceReminder, nil, 100*len(schemas), 300)
		require.Len(b, claimed, 100*len(schemas), "ran out of pending executions")
		intents := make([]automation.DeliveryIntent, len(claimed))
		for j, c := range claimed {
			intents[j] = deliveryFor(c.Execution.ID, c.Execution.LeaseToken)
		}
		pgtest.BeginDeliveries(b, pool, intents...)
		b.StartTimer()
		for k := range schemas {
			v := (i + k) % len(schemas)
			in := outcomes(claimed[k*100 : (k+1)*100])
			t0 := time.Now()
			var out []byte
			require.NoError(b, pool.QueryRow(bg, `select `+schemas[v]+`.automation_report($1::jsonb)`, in).Scan(&out))
			took[v] += time.Since(t0)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(took[0].Microseconds())/1000/n, "ms/100")
	b.ReportMetric(float64(took[1])/float64(took[0]), "nocount/this")
	b.ReportMetric(float64(took[2])/float64(took[0]), "uncut/this")
}

// BenchmarkClaimBodies times automation_claim_rows as it is (public: it
// leases, automation_claim_documents builds the documents) and the
// 20261202001810 body that did both in one statement, alternated per claim
// of 100 in one database (the order rotating); it reports ms per claim and
// the ratio of the one-statement body to this one.
func BenchmarkClaimBodies(b *testing.B) {
	pool := benchDB(b)
	resetBacklog(b, pool)
	installBody(b, pool, "20261202001810_claim_locale.sql", "automation_claim_rows", "bench_onestatement", nil)
	schemas := []string{"public", "bench_onestatement"}
	took := make([]time.Duration, len(schemas))
	for i := 0; b.Loop(); i++ {
		for k := range schemas {
			v := (i + k) % len(schemas)
			t0 := time.Now()
			var n int
			require.NoError(b, pool.QueryRow(bg, `select count(*) from `+schemas[v]+`.automation_claim_rows($1, null, 100, 300)`,
				automation.ActionInvoiceReminder).Scan(&n))
			took[v] += time.Since(t0)
			require.Equal(b, 100, n, "ran out of pending executions")
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(took[0].Microseconds())/1000/n, "ms/claim")
	b.ReportMetric(float64(took[1])/float64(took[0]), "onestatement/this")
}
