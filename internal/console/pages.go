package console

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/opsdb"
)

var funcs = template.FuncMap{
	"when": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if t == nil {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		}
		return "-"
	},
	"short": func(id fmt.Stringer) string {
		s := id.String()
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"dur": func(d *time.Duration) string {
		if d == nil {
			return "-"
		}
		return d.Round(time.Millisecond).String()
	},
	"age": func(sec int64) string { return (time.Duration(sec) * time.Second).String() },
}

// page is what every template gets.
type page struct {
	Title     string
	Nav       string
	Actor     string
	Login     bool
	Actions   bool
	HasOutbox bool
	FormToken string
	Flash     string
	Data      any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	var buf bytes.Buffer
	p := page{Title: title, Nav: name, Actor: s.actor(r), Login: s.cfg.Token != "", Actions: s.cfg.Actions,
		HasOutbox: s.cfg.Outbox != nil, FormToken: s.formToken(r), Flash: r.URL.Query().Get("flash"), Data: data}
	if err := s.tmpl[name].Execute(&buf, p); err != nil {
		s.cfg.Logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page; database errors are logged, and shown (they
// carry no personal data: ids and messages of the database).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.cfg.Logger.Warn("console: request failed", "path", r.URL.Path, "status", status, "err", err)
	w.WriteHeader(status)
	s.render(w, r, "error", "Error", err.Error())
}

// filterFromQuery reads the executions filter from the URL.
func filterFromQuery(q url.Values) (opsdb.Filter, error) {
	f := opsdb.Filter{State: q.Get("state"), Action: q.Get("action"), TriggerType: strings.TrimSpace(q.Get("trigger")),
		ErrorCode: strings.TrimSpace(q.Get("error")), After: q.Get("after")}
	var errs []error
	for _, p := range []struct {
		key string
		dst *uuid.UUID
	}{{"org", &f.Org}, {"workflow", &f.Workflow}} {
		if v := strings.TrimSpace(q.Get(p.key)); v != "" {
			id, err := uuid.Parse(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: not a uuid", p.key))
			}
			*p.dst = id
		}
	}
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := strings.TrimSpace(q.Get(p.key)); v != "" {
			t, err := opsdb.ParseTime(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.key, err))
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, errors.New("limit: a positive number"))
		}
		f.Limit = n
	}
	if err := errors.Join(errs...); err != nil {
		return f, err
	}
	return f, f.Validate()
}

func (s *Server) executions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := filterFromQuery(q)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	p, err := opsdb.List(r.Context(), s.cfg.DB, f)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	counts, err := opsdb.Counts(r.Context(), s.cfg.DB, f, s.cfg.Counts)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	next := ""
	if p.Next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("after", p.Next)
		next = "/executions?" + nq.Encode()
	}
	stateLinks := map[string]string{}
	for _, st := range append([]string{""}, opsdb.States...) {
		sq := url.Values{}
		for k, v := range q {
			sq[k] = v
		}
		sq.Del("after")
		sq.Set("state", st)
		stateLinks[st] = "/executions?" + sq.Encode()
	}
	s.render(w, r, "executions", "Executions", map[string]any{
		"Page": p, "Counts": counts, "Q": q, "Next": next, "States": opsdb.States, "StateLinks": stateLinks,
		"Actions":  opsdb.Actions(),
		"Triggers": []string{"invoice_overdue", "maintenance_due", "appointment", "stale_job", "scheduled"},
		"First":    q.Get("after") != "",
	})
}

func (s *Server) execution(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, errors.New("not an execution id"))
		return
	}
	d, err := opsdb.GetDetail(r.Context(), s.cfg.DB, id)
	if errors.Is(err, opsdb.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "execution", "Execution "+id.String()[:8], d)
}

// act applies a POSTed action: /executions/{id}/retry|cancel,
// /deliveries/{id}/sent|not-sent, /workflows/{id}/pause|resume.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Actions {
		s.fail(w, r, http.StatusForbidden, errors.New("this console is read-only: start it with --actions"))
		return
	}
	if !hmacEqual(r.PostFormValue("form_token"), s.formToken(r)) {
		s.fail(w, r, http.StatusForbidden, errors.New("the form has expired: reload the page"))
		return
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, errors.New("not an id"))
		return
	}
	kind := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	action := map[string]string{
		"executions/retry": opsdb.Retry, "executions/cancel": opsdb.Cancel,
		"deliveries/sent": opsdb.SettleSent, "deliveries/not-sent": opsdb.SettleNotSent,
		"workflows/pause": opsdb.Pause, "workflows/resume": opsdb.Resume,
	}[kind+"/"+r.PathValue("action")]
	if action == "" {
		s.fail(w, r, http.StatusNotFound, errors.New("no such action"))
		return
	}
	a, err := opsdb.Act(r.Context(), s.cfg.DB, action, id, s.actor(r), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.cfg.Logger.Info("operator action", "action", action, "id", id, "applied", a.Applied, "reason", a.Reason, "via", "console")
	flash := action + ": applied"
	if !a.Applied {
		flash = action + ": refused: " + a.Why()
	}
	back := "/executions/" + id.String()
	switch {
	case kind == "workflows":
		back = "/workflows"
	case kind == "deliveries" && a.ExecutionID != "":
		back = "/executions/" + a.ExecutionID
	}
	http.Redirect(w, r, back+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

func hmacEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Server) workflows(w http.ResponseWriter, r *http.Request) {
	ws, err := opsdb.Workflows(r.Context(), s.cfg.DB, s.cfg.Counts)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "workflows", "Workflows", ws)
}

func (s *Server) cron(w http.ResponseWriter, r *http.Request) {
	jobs, err := opsdb.CronJobs(r.Context(), s.cfg.DB, 20, time.Now())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	h, err := opsdb.Health(r.Context(), s.cfg.DB)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "cron", "Cron jobs", map[string]any{"Jobs": jobs, "Health": h})
}

func (s *Server) analytics(w http.ResponseWriter, r *http.Request) {
	const days = 14
	rows, err := opsdb.Analytics(r.Context(), s.cfg.DB, days)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	type chart struct {
		Name string
		SVG  template.HTML
	}
	total := map[time.Time]opsdb.DayCount{}
	per := map[string]map[time.Time]opsdb.DayCount{}
	var names []string
	for _, d := range rows {
		day := d.Day.UTC().Truncate(24 * time.Hour)
		t := total[day]
		t.Sent, t.Skipped, t.Failed = t.Sent+d.Sent, t.Skipped+d.Skipped, t.Failed+d.Failed
		total[day] = t
		if per[d.Workflow] == nil {
			per[d.Workflow] = map[time.Time]opsdb.DayCount{}
			names = append(names, d.Workflow)
		}
		x := per[d.Workflow][day]
		x.Sent, x.Skipped, x.Failed = x.Sent+d.Sent, x.Skipped+d.Skipped, x.Failed+d.Failed
		per[d.Workflow][day] = x
	}
	sort.Strings(names)
	charts := []chart{{Name: "All workflows", SVG: barChart(total, today, days, 720, 220)}}
	for _, n := range names {
		charts = append(charts, chart{Name: n, SVG: barChart(per[n], today, days, 360, 140)})
	}
	s.render(w, r, "analytics", "Analytics", map[string]any{"Charts": charts, "Days": days})
}

// outboxEmail is one captured email with the delivery it belongs to.
type outboxEmail struct {
	N          int
	Email      devstack.Email
	Delivery   string
	Execution  string
	HeaderList []string
}

// outboxSMS is one captured SMS with its delivery.
type outboxSMS struct {
	SMS                 devstack.SMS
	Delivery, Execution string
}

func (s *Server) outbox(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Outbox == nil {
		s.fail(w, r, http.StatusNotFound, errors.New("no outbox here: the outbox is the local stack's (dueflow demo starts this console with it)"))
		return
	}
	emails, err := s.cfg.Outbox.Emails(r.Context())
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	sms := s.cfg.Outbox.SMS()
	var ids []string
	for _, e := range emails {
		ids = append(ids, strings.Trim(e.MessageID, "<> "))
	}
	for _, m := range sms {
		ids = append(ids, m.ID)
	}
	links, err := deliveriesByMessageID(r, s.cfg.DB, ids)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	var oe []outboxEmail
	for i := len(emails) - 1; i >= 0; i-- { // newest first
		e := emails[i]
		l := links[strings.Trim(e.MessageID, "<> ")]
		var hs []string
		for k, v := range e.Headers {
			hs = append(hs, k+": "+strings.Join(v, ", "))
		}
		sort.Strings(hs)
		if len(hs) == 0 {
			hs = []string{"From: " + e.FromName + " <" + e.From + ">", "To: " + strings.Join(e.To, ", "),
				"Subject: " + e.Subject, "Message-ID: <" + strings.Trim(e.MessageID, "<> ") + ">", "Reply-To: " + e.ReplyTo,
				"Date: " + e.ReceivedAt.UTC().Format(time.RFC1123Z)}
		}
		oe = append(oe, outboxEmail{N: i, Email: e, Delivery: l[0], Execution: l[1], HeaderList: hs})
	}
	var sl []outboxSMS
	for i := len(sms) - 1; i >= 0; i-- {
		l := links[sms[i].ID]
		sl = append(sl, outboxSMS{SMS: sms[i], Delivery: l[0], Execution: l[1]})
	}
	s.render(w, r, "outbox", "Outbox", map[string]any{"Emails": oe, "SMS": sl})
}

// deliveriesByMessageID maps provider message ids to [delivery id, execution id].
func deliveriesByMessageID(r *http.Request, db opsdb.DB, ids []string) (map[string][2]string, error) {
	out := map[string][2]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(r.Context(), `select provider_message_id, id::text, execution_id::text from public.automation_deliveries
 where provider_message_id = any($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("link the outbox to deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m, d, e string
		if err := rows.Scan(&m, &d, &e); err != nil {
			return nil, fmt.Errorf("link the outbox to deliveries: %w", err)
		}
		out[m] = [2]string{d, e}
	}
	return out, rows.Err()
}

// emailHTML serves one captured email's HTML part for the sandboxed frame:
// the sandbox CSP forbids scripts, forms and every fetch but inline images.
func (s *Server) emailHTML(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Outbox == nil {
		http.NotFound(w, r)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	emails, eerr := s.cfg.Outbox.Emails(r.Context())
	if err != nil || eerr != nil || n < 0 || n >= len(emails) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:;")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(emails[n].HTML))
}
