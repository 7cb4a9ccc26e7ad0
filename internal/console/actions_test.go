package console_test

import (
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/opsdb"
	"github.com/dueflow/dueflow/internal/pgtest"
)

// loggedIn starts a console with actions enabled behind a token, logs in
// as name and returns its address and the client holding the session.
func loggedIn(t *testing.T, cfg console.Config, name string) (string, *http.Client) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg.Token, cfg.Actions = "tok-456", true
	s, err := console.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := client()
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"name": {name}, "token": {"tok-456"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return srv.URL, c
}

// press posts the form of page whose action is path (the button), with the
// page's form token, and returns where it redirects to.
func press(t *testing.T, c *http.Client, base, page, path string) string {
	t.Helper()
	code, body, _ := get(t, c, base+page)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `action="`+path+`"`, "the page %s has the button %s", page, path)
	m := formToken.FindStringSubmatch(body)
	require.NotNil(t, m)
	resp, err := c.PostForm(base+path, url.Values{"form_token": {m[1]}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.QueryUnescape(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

// Settle sent and settle not sent from an execution's page, pause and
// resume from the workflows page: each changes the rows and is recorded
// with the logged-in name; a second settle is refused, and recorded too.
func TestSettleAndPauseButtons(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, execs := pgtest.OverdueInvoices(t, db, 1)
	exec := execs[0].String()
	var sent, notSent uuid.UUID
	require.NoError(t, db.QueryRow(t.Context(), `
insert into automation_deliveries (execution_id, organization_id, step_index, channel, recipient, provider, idempotency_key, status)
select id, organization_id, s, 'email', 'ada@client.test', 'smtp', id || ':' || s, 'unknown'
  from automation_execution_logs, generate_series(0, 1) s where id = $1
returning id`, execs[0]).Scan(&sent))
	notSent = uuid.MustParse(pgtest.Text(t, db, `select id::text from automation_deliveries where execution_id = $1 and id <> $2`, execs[0], sent))
	base, c := loggedIn(t, console.Config{DB: db}, "erin")

	loc := press(t, c, base, "/executions/"+exec, "/deliveries/"+sent.String()+"/sent")
	assert.Equal(t, "/executions/"+exec+"?flash=settle_sent: applied", loc)
	assert.Equal(t, "sent erin", pgtest.Text(t, db, `select status || ' ' || settled_by from automation_deliveries where id = $1`, sent))
	loc = press(t, c, base, "/executions/"+exec, "/deliveries/"+notSent.String()+"/not-sent")
	assert.Equal(t, "/executions/"+exec+"?flash=settle_not_sent: applied", loc)
	assert.Equal(t, "failed settled_not_sent erin", pgtest.Text(t, db,
		`select status || ' ' || error_code || ' ' || settled_by from automation_deliveries where id = $1`, notSent))
	code, body, _ := get(t, c, base+"/executions/"+exec)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "(settled by erin)")
	assert.NotContains(t, body, `/deliveries/`+sent.String()+`/sent"`, "no settle buttons once settled")

	// a settle posted again (a second tab) is refused and recorded
	code, body, _ = get(t, c, base+"/executions/"+exec)
	require.Equal(t, http.StatusOK, code)
	resp, err := c.PostForm(base+"/deliveries/"+sent.String()+"/not-sent", url.Values{"form_token": {formToken.FindStringSubmatch(body)[1]}})
	require.NoError(t, err)
	resp.Body.Close()
	loc, err = url.QueryUnescape(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "/executions/"+exec+"?flash=settle_not_sent: refused: "+opsdb.Reasons["already_settled"], loc)
	assert.Equal(t, "sent", pgtest.Text(t, db, `select status from automation_deliveries where id = $1`, sent))

	loc = press(t, c, base, "/workflows", "/workflows/"+wf.String()+"/pause")
	assert.Equal(t, "/workflows?flash=pause: applied", loc)
	assert.Equal(t, "false", pgtest.Text(t, db, `select is_active::text from automation_workflows where id = $1`, wf))
	code, body, _ = get(t, c, base+"/workflows")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "paused")
	loc = press(t, c, base, "/workflows", "/workflows/"+wf.String()+"/resume")
	assert.Equal(t, "/workflows?flash=resume: applied", loc)
	assert.Equal(t, "true", pgtest.Text(t, db, `select is_active::text from automation_workflows where id = $1`, wf))

	assert.Equal(t, strings.Join([]string{
		"erin settle_sent true " + sent.String() + " " + exec,
		"erin settle_not_sent true " + notSent.String() + " " + exec,
		"erin settle_not_sent false " + sent.String() + " " + exec,
		"erin pause true " + wf.String(),
		"erin resume true " + wf.String(),
	}, "\n"), pgtest.Text(t, db, `select string_agg(concat_ws(' ', actor, action, applied::text, delivery_id, execution_id, workflow_id), e'\n' order by id)
		from automation_operator_actions`))
}

var listedID = regexp.MustCompile(`<a href="/executions/([0-9a-f-]{36})" class="id">`)

// listed returns the executions a list page shows and its counts per state.
func listed(t *testing.T, c *http.Client, u string) ([]string, map[string]string) {
	t.Helper()
	code, body, _ := get(t, c, u)
	require.Equal(t, http.StatusOK, code, body)
	var ids []string
	for _, m := range listedID.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	counts := map[string]string{}
	for _, m := range regexp.MustCompile(`data-state="(\w+)"[^>]*>\w+ <b>([^<]*)</b>`).FindAllStringSubmatch(body, -1) {
		counts[m[1]] = html.UnescapeString(m[2])
	}
	return ids, counts
}

// The executions list's organisation, action and trigger type filters show
// only their rows, and the counts per state follow them.
func TestExecutionsFilters(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	orgA, _, a := pgtest.OverdueInvoices(t, db, 2)
	_, _, b := pgtest.OverdueInvoices(t, db, 2)
	pgtest.Exec(t, db, `update automation_execution_logs set action = 'run-workflow', trigger_type = 'scheduled' where id = $1`, b[0])
	pgtest.Exec(t, db, `update automation_execution_logs set status = 'cancelled', completed_at = now() where id = $1`, a[1])
	base, c := loggedIn(t, console.Config{DB: db}, "erin")
	str := func(ids ...uuid.UUID) []string {
		out := pgtest.IDStrings(ids)
		return out
	}
	ids, counts := listed(t, c, base+"/executions?org="+orgA.String())
	assert.ElementsMatch(t, str(a...), ids)
	assert.Equal(t, "1", counts["pending"])
	assert.Equal(t, "1", counts["cancelled"])
	ids, counts = listed(t, c, base+"/executions?action=run-workflow")
	assert.Equal(t, str(b[0]), ids)
	assert.Equal(t, "1", counts["pending"])
	assert.Equal(t, "0", counts["cancelled"])
	ids, _ = listed(t, c, base+"/executions?trigger=scheduled")
	assert.Equal(t, str(b[0]), ids)
	ids, counts = listed(t, c, base+"/executions?action=invoice-reminder&trigger=invoice_overdue")
	assert.ElementsMatch(t, str(a[0], a[1], b[1]), ids)
	assert.Equal(t, "2", counts["pending"])
	ids, _ = listed(t, c, base+"/executions?trigger=appointment")
	assert.Empty(t, ids)
}

// Counts past the cap read "cap+", on the executions and the workflows
// pages; counts that do not finish within the budget read "?" and the
// page still answers.
func TestCountsCapAndBudget(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, wf, _ := pgtest.OverdueInvoices(t, db, 3)
	base, c := loggedIn(t, console.Config{DB: db, Counts: opsdb.CountLimits{Cap: 2}}, "erin")
	_, counts := listed(t, c, base+"/executions")
	assert.Equal(t, "2+", counts["pending"])
	assert.Equal(t, "0", counts["running"])
	code, body, _ := get(t, c, base+"/workflows")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, html.UnescapeString(body), `<td>2+</td><td>0</td>`, "pending 2+, running 0")

	// 60,000 pending rows take milliseconds to count, more than the budget
	pgtest.Exec(t, db, `
insert into automation_execution_logs (workflow_id, organization_id, action, trigger_type, occurrence_key, subject_type, subject_id, status)
select w.id, w.organization_id, 'invoice-reminder', 'invoice_overdue', 'many:' || g, 'invoice', 'inv-' || g, 'pending'
  from automation_workflows w, generate_series(1, 60000) g where w.id = $1`, wf)
	pgtest.Exec(t, db, `analyze automation_execution_logs`)
	base, c = loggedIn(t, console.Config{DB: db, Counts: opsdb.CountLimits{Cap: 1_000_000, Budget: time.Millisecond}}, "erin")
	ids, counts := listed(t, c, base+"/executions")
	assert.Len(t, ids, 50, "the list itself is not counted")
	for _, st := range opsdb.States {
		assert.Equal(t, "?", counts[st], st)
	}
	code, body, _ = get(t, c, base+"/workflows")
	require.Equal(t, http.StatusOK, code)
	assert.Regexp(t, `<td>\?</td><td>\?</td>`, body, "pending and running not counted in time")
}
