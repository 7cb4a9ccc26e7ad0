package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/demodata"
	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/stacktest"
	"github.com/dueflow/dueflow/shared/automation"
)

// screenshotDir is where the browser test writes one screenshot per page
// (git-ignored; docs/operating.md links it).
func screenshotDir(t *testing.T) string {
	root, err := devstack.FindRoot(".")
	require.NoError(t, err)
	dir := filepath.Join(root, ".build", "screenshots")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser starts Debian's chromium, headless, for the test.
func browser(t *testing.T) context.Context {
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "the browser tests need Debian's chromium package (apt-get install chromium; .ci/run installs it)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	require.NoError(t, chromedp.Do(ctx)) // start it, without a time limit (it would stop the browser)
	return ctx
}

// The console of the local stack with the demo data, in a real Chromium:
// the executions list, one execution's timeline, a retry from its button
// (the row changes in the database), the outbox's emails and SMS, the cron
// jobs' runs. A screenshot of each page goes to .build/screenshots.
func TestBrowserDemoConsole(t *testing.T) {
	root, err := devstack.FindRoot(".")
	require.NoError(t, err)
	bctx := browser(t)
	stack := stacktest.Start(t, devstack.Config{Root: root, UseMailpit: true, SMSProvider: "telnyx", Functions: automation.Actions, FastPostgres: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool := stack.Pool()
	require.NoError(t, demodata.Seed(ctx, pool, time.Now()))
	_, err = stack.Tick(ctx)
	require.NoError(t, err)

	srv, err := console.New(console.Config{DB: pool, Actions: true, Actor: "browser-test", Outbox: stack,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	web := httptest.NewServer(srv)
	defer web.Close()
	shots := screenshotDir(t)
	// each step gets its own time limit, derived from the browser's context
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		rctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(rctx, steps...))
	}
	text := func(sel string) string {
		t.Helper()
		rctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(rctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return v
	}
	count := func(sel string) int {
		t.Helper()
		rctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		n, err := chromedp.Run(rctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		require.NoError(t, err, sel)
		return n
	}
	shot := func(name string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		// the whole page in the viewport: the email frames (out-of-process,
		// sandboxed) are painted only there
		h, err := chromedp.Run(rctx, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(rctx, chromedp.EmulateViewport(1400, max(h, 1000)), chromedp.Sleep(700*time.Millisecond)))
		png, err := chromedp.Run(rctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(rctx, chromedp.EmulateViewport(1400, 1000)))
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}

	// executions list: every demo execution, counts per state
	var demoRows int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from automation_execution_logs where organization_id = any($1)`, demodata.OrgIDs).Scan(&demoRows))
	require.Positive(t, demoRows)
	do(chromedp.Navigate(web.URL+"/executions"), chromedp.WaitVisible(chromedp.CSS("#executions")))
	assert.Equal(t, demoRows, count("#executions tbody a.id"))
	var wantCompleted int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from automation_execution_logs where status = 'completed'`).Scan(&wantCompleted))
	assert.Equal(t, fmt.Sprint(wantCompleted), text(`a[data-state="completed"] b`))
	shot("executions")

	// one execution's timeline: a completed execution whose email was sent,
	// with the provider's message id (a multi-step workflow's execution may
	// still wait for its next step, and has no final report yet)
	var sentExec, msgID string
	require.NoError(t, pool.QueryRow(ctx, `select d.execution_id::text, d.provider_message_id from automation_deliveries d
		join automation_execution_logs e on e.id = d.execution_id and e.status = 'completed'
		where d.status = 'sent' and d.channel = 'email' order by d.created_at limit 1`).Scan(&sentExec, &msgID))
	do(chromedp.Navigate(web.URL+"/executions/"+sentExec), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	timeline := text("#timeline")
	assert.Contains(t, timeline, "created by the")
	assert.Contains(t, timeline, "claimed by the")
	assert.Contains(t, timeline, "email sent, provider message id "+msgID)
	assert.Contains(t, timeline, "reported: ")
	shot("execution")

	// a retried execution's page: both claims and the first attempt's error
	// (the row keeps only the latest), driven through the real claim and
	// report in one transaction (pg_cron's dispatcher never sees it due)
	retried := retriedExecution(ctx, t, pool)
	do(chromedp.Navigate(web.URL+"/executions/"+retried), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	timeline = text("#timeline")
	assert.Contains(t, timeline, "attempt 1 of 5")
	assert.Contains(t, timeline, "attempt 2 of 5")
	assert.Contains(t, timeline, "retry after attempt 1 ("+automation.CodeProviderRetryable+": 503 from provider)")
	assert.Contains(t, timeline, "reported: completed after 2 attempts")
	shot("execution-retried-history")

	// retry from the button: a finished (failed or skipped) execution
	var retryExec, before string
	require.NoError(t, pool.QueryRow(ctx, `select id::text, status from automation_execution_logs
		where status in ('failed', 'skipped') order by status, created_at limit 1`).Scan(&retryExec, &before))
	do(chromedp.Navigate(web.URL+"/executions/"+retryExec), chromedp.WaitVisible(chromedp.CSS("#retry")),
		chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	assert.Equal(t, "retry: applied", text("#flash"))
	shot("execution-retried")
	var after, actor string
	require.NoError(t, pool.QueryRow(ctx, `select e.status, a.actor from automation_execution_logs e
		join automation_operator_actions a on a.execution_id = e.id and a.action = 'retry' and a.applied
		where e.id = $1`, retryExec).Scan(&after, &actor))
	assert.NotEqual(t, before, after, "the retry changed the row")
	assert.Equal(t, "browser-test", actor)

	// the outbox: every email and SMS the stack captured, linked to its execution
	emails, err := stack.Emails(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, emails)
	require.NotEmpty(t, stack.SMS())
	do(chromedp.Navigate(web.URL+"/outbox"), chromedp.WaitVisible(chromedp.CSS("#sms")), chromedp.Sleep(500*time.Millisecond))
	assert.Equal(t, len(emails), count("article.email"))
	assert.Equal(t, len(stack.SMS()), count("#sms tbody td.sms"))
	assert.Equal(t, len(emails)+len(stack.SMS()), count("main a[href^='/executions/']"), "every message links to its execution")
	assert.Equal(t, count("article.email iframe"), count("article.email iframe[sandbox='']"), "HTML parts in frames sandboxed without permissions")
	shot("outbox")

	// cron jobs: pg_cron runs each job every minute; wait for a run
	deadline := time.Now().Add(100 * time.Second)
	for {
		var runs int
		require.NoError(t, pool.QueryRow(ctx, `select count(*) from cron.job_run_details d join cron.job j using (jobid)
			where j.jobname = 'process-automations' and d.status in ('succeeded', 'failed')`).Scan(&runs))
		if runs > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no pg_cron run in 100 s")
		time.Sleep(2 * time.Second)
	}
	do(chromedp.Navigate(web.URL+"/cron"), chromedp.WaitVisible(chromedp.CSS("#job-process-automations")))
	cronText := text("#job-process-automations")
	assert.Contains(t, cronText, "succeeded")
	assert.Contains(t, cronText, "next run 20")
	shot("cron")

	do(chromedp.Navigate(web.URL+"/workflows"), chromedp.WaitVisible(chromedp.CSS("#workflows")))
	shot("workflows")
	do(chromedp.Navigate(web.URL+"/analytics"), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
	shot("analytics")
	t.Logf("screenshots in %s", shots)
}

// retriedExecution creates an execution of a demo invoice workflow and runs
// it through automation_claim and automation_report in one transaction:
// attempt 1 reported for a retry with a provider error, attempt 2
// completed. It returns the execution's id.
func retriedExecution(ctx context.Context, t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var id string
	require.NoError(t, tx.QueryRow(ctx, `
		insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key,
		  subject_type, subject_id, client_id, next_attempt_at)
		select w.id, w.organization_id, 'invoice-reminder', 'invoice_overdue', 'browser-test:retried', 'invoice', i.id::text,
		  i.client_id::text, now()
		from automation_workflows w
		join automation_src_invoices i on i.organization_id = w.organization_id
		where w.trigger_type = 'invoice_overdue'
		order by w.id, i.id limit 1
		returning id::text`).Scan(&id))
	report := func(status automation.OutcomeStatus, code automation.Code, msg string) {
		var lease string
		require.NoError(t, tx.QueryRow(ctx, `select c -> 'execution' ->> 'lease_token'
			from automation_claim('invoice-reminder', array[$1::uuid], 1, 60) c`, id).Scan(&lease))
		var applied bool
		require.NoError(t, tx.QueryRow(ctx, `select (automation_report(jsonb_build_array(jsonb_build_object(
			'execution_id', $1::text, 'lease_token', $2::text, 'status', $3::text, 'error_code', $4::text,
			'error_message', $5::text, 'actions_executed', 0))) -> 0 ->> 'applied')::boolean`, id, lease, status, code, msg).Scan(&applied))
		require.True(t, applied, status)
	}
	report(automation.OutcomeRetry, automation.CodeProviderRetryable, "503 from provider")
	_, err = tx.Exec(ctx, `update automation_execution_logs set next_attempt_at = now() where id = $1`, id)
	require.NoError(t, err)
	report(automation.OutcomeCompleted, "", "")
	require.NoError(t, tx.Commit(ctx))
	return id
}
