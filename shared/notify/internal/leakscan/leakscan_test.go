package leakscan_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/internal/notifytest"
	"github.com/dueflow/dueflow/shared/notify/mailgun"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
	"github.com/dueflow/dueflow/shared/notify/twilio"
	"github.com/dueflow/dueflow/shared/supabase"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The recipient, distinctive so that any trace of it is found, and the
// marker of the message bodies.
const (
	email      = "zelda.quux@wombat-client.test"
	phoneE164  = "+19175550143"
	bodyMarker = "qx7-body-marker"
)

// needles are every form of the recipient and body a leak could take.
var needles = []string{
	email, "zelda.quux", "wombat-client", "zelda%40",
	phoneE164, "19175550143", "9175550143", "(917) 555-0143", "917-555-0143", "917.555.0143", "917 555 0143", "5550143", "555-0143",
	bodyMarker,
}

// Failure kinds every provider is put through.
const (
	kindInvalid  = "invalid recipient"
	kindRejected = "rejected content"
	kindAuth     = "auth"
	kindRate     = "rate limit"
	kind5xx      = "5xx"
	kindStall    = "timeout (stall)"
	kindDrop     = "connection drop"
)

var kinds = []string{kindInvalid, kindRejected, kindAuth, kindRate, kind5xx, kindStall, kindDrop}

// logBuffer collects the engine's JSON log lines (concurrent sends).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// provider builds a sender failing the given way and says what the engine
// should record for it (the delivery's status and, when it is decided by
// this branch's classification, its error code).
type provider struct {
	name    string
	channel automation.Channel
	sender  func(t *testing.T, kind string) notify.Sender
	// code is the delivery's error_code per kind ("" = not asserted).
	code map[string]string
}

// httpAnswers are the stand-in answers of an HTTP provider per kind, each
// naming the recipient the way providers do.
func httpProvider(name string, channel automation.Channel, answers map[string]notifytest.Answer, build func(base string) (notify.Sender, error)) provider {
	return provider{
		name: name, channel: channel,
		sender: func(t *testing.T, kind string) notify.Sender {
			var base string
			switch kind {
			case kindStall:
				base = notifytest.Stalling(t, notifytest.StallAfterHeaders, 0, "")
			case kindDrop:
				base = notifytest.Stalling(t, notifytest.DropAfterRequest, 0, "")
			default:
				a, ok := answers[kind]
				require.True(t, ok, kind)
				base = notifytest.NewServer(t, a).URL
			}
			s, err := build(base)
			require.NoError(t, err)
			return s
		},
		code: map[string]string{
			kindInvalid: string(notify.CodeInvalidRecipient), kindRejected: string(notify.CodeRejected), kindAuth: string(notify.CodeAuth),
			kindRate: string(notify.CodeRateLimited), kind5xx: string(notify.CodeUnavailable),
		},
	}
}

func providers() []provider {
	mg := httpProvider("mailgun", automation.ChannelEmail, map[string]notifytest.Answer{
		kindInvalid:  {Status: 400, Body: `{"message":"'to' parameter is not a valid address: ` + email + `"}`},
		kindRejected: {Status: 400, Body: `{"message":"Message to ` + email + ` rejected: content flagged"}`},
		kindAuth:     {Status: 401, Body: `Forbidden: this domain may not send to ` + email},
		kindRate:     {Status: 429, Body: `{"message":"Too many requests for ` + email + `"}`, RetryAfter: "30"},
		kind5xx:      {Status: 502, Body: `<html>bad gateway relaying to ` + email + `</html>`},
	}, func(base string) (notify.Sender, error) {
		return mailgun.New(mailgun.Config{Domain: "mg.acme.test", APIKey: "key-scan", APIBase: base, From: "billing@acme.test"})
	})
	tw := httpProvider("twilio", automation.ChannelSMS, map[string]notifytest.Answer{
		kindInvalid:  {Status: 400, Body: `{"code":21211,"message":"The 'To' number ` + phoneE164 + ` is not a valid phone number.","status":400}`},
		kindRejected: {Status: 400, Body: `{"code":21617,"message":"The message to (917) 555-0143 was refused: content","status":400}`},
		kindAuth:     {Status: 401, Body: `{"code":20003,"message":"Authenticate to send to ` + phoneE164 + `","status":401}`},
		kindRate:     {Status: 429, Body: `{"code":20429,"message":"Too Many Requests to 917-555-0143","status":429}`, RetryAfter: "30"},
		kind5xx:      {Status: 503, Body: `<html>upstream failed for 19175550143</html>`},
	}, func(base string) (notify.Sender, error) {
		return twilio.New(twilio.Config{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "tok0scan", From: "+15550001111", APIBase: base})
	})
	tx := httpProvider("telnyx", automation.ChannelSMS, map[string]notifytest.Answer{
		kindInvalid:  {Status: 400, Body: `{"errors":[{"code":"40310","title":"Invalid 'to' address ` + phoneE164 + `","detail":"` + phoneE164 + ` is not a valid number"}]}`},
		kindRejected: {Status: 400, Body: `{"errors":[{"code":"40002","title":"Message blocked","detail":"message to ` + phoneE164 + ` blocked as spam"}]}`},
		kindAuth:     {Status: 401, Body: `{"errors":[{"code":"10009","title":"Authentication failed","detail":"key may not send to 917.555.0143"}]}`},
		kindRate:     {Status: 429, Body: `{"errors":[{"code":"10011","title":"Too many requests","detail":"to ` + phoneE164 + `"}]}`, RetryAfter: "30"},
		kind5xx:      {Status: 503, Body: `upstream failed for +1 917 555 0143`},
	}, func(base string) (notify.Sender, error) {
		return telnyx.New(telnyx.Config{APIKey: "KEYscan", From: "+15550001111", APIBase: base})
	})
	sm := provider{name: "smtp", channel: automation.ChannelEmail, sender: smtpSender}
	return []provider{sm, mg, tw, tx}
}

// smtpBackend is a scripted SMTP server: it fails every message the way
// kind says, naming the recipient as real servers do.
type smtpBackend struct {
	kind    string
	release chan struct{} // closed when the test ends: a stall ends
}

func (b smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{kind: b.kind, conn: c, release: b.release}, nil
}

type smtpSession struct {
	kind    string
	conn    *smtp.Conn
	release chan struct{}
	rcpt    string
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error {
	if s.kind == kindAuth {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required to relay to <" + email + ">"}
	}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = to
	switch s.kind {
	case kindInvalid:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown"}
	case kindRate:
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "<" + to + ">: too many messages, slow down"}
	}
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	_, _ = io.Copy(io.Discard, r)
	switch s.kind {
	case kindRejected:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message to <" + s.rcpt + "> rejected: spam content"}
	case kind5xx:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem delivering to <" + s.rcpt + ">"}
	case kindStall:
		<-s.release
	case kindDrop:
		_ = s.conn.Close()
	}
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func smtpSender(t *testing.T, kind string) notify.Sender {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	release := make(chan struct{})
	srv := smtp.NewServer(smtpBackend{kind: kind, release: release})
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(release); _ = srv.Close() })
	// A stall ends at the send's deadline (the engine's), well before
	// Timeout.
	s, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, TLS: smtpmail.TLSNone,
		From: "billing@acme.test", Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

const jwtSecret = "leakscan-jwt-secret-with-32-chars-or-more"

func newStore(t *testing.T) (*pgxpool.Pool, *supabase.Client) {
	db, _ := pgtest.NewDB(t)
	srv := httptest.NewServer(postgrest.New(db, jwtSecret, slog.New(slog.NewJSONHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	key, err := postgrest.SignJWT(jwtSecret, "service_role", time.Hour)
	require.NoError(t, err)
	store, err := supabase.New(supabase.Config{URL: srv.URL, Key: key, Timeout: 10 * time.Second})
	require.NoError(t, err)
	return db, store
}

// due creates an organisation with a workflow of one step on channel, a
// client with the recipient's address and phone number and an overdue
// invoice; the real check creates its execution, made due now.
func due(t *testing.T, db *pgxpool.Pool, channel automation.Channel) uuid.UUID {
	org := pgtest.CreateOrg(t, db, pgtest.Org{WindowStart: pgtest.AllDayStart, WindowEnd: pgtest.AllDayEnd})
	step := `{"type":"send_email","subject":"Invoice {{invoice.number}}","body":"` + bodyMarker + ` {{invoice.balance}}"}`
	if channel == automation.ChannelSMS {
		step = `{"type":"send_sms","body":"` + bodyMarker + ` {{invoice.balance}}"}`
	}
	wf := pgtest.CreateWorkflow(t, db, pgtest.Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7]}`, Steps: "[" + step + "]"})
	client := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: email, Phone: phoneE164})
	pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: client, DueInDays: -3, Amount: "120.50"})
	pgtest.Exec(t, db, `select check_overdue_invoices()`)
	pgtest.MakeDue(t, db)
	ids := pgtest.ExecutionIDs(t, db, wf)
	require.Len(t, ids, 1)
	return ids[0]
}

// TestNoPersonalDataInLogsOrRows sends one reminder per provider (SMTP,
// Mailgun, Twilio, Telnyx) and failure kind (invalid recipient, rejected
// content, auth, rate limit, 5xx, a stall past the deadline, a dropped
// connection) through the real engine and store, the stand-ins naming the
// recipient in their error texts, then searches the engine's JSON logs and
// the rows of automation_execution_logs, automation_deliveries (but its
// recipient column, the ledger's record of where a message went) and
// automation_check_problems for the address, the phone number (E.164,
// digits only, national forms) and the message body: none may appear.
func TestNoPersonalDataInLogsOrRows(t *testing.T) {
	db, store := newStore(t)
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	for _, p := range providers() {
		for _, kind := range kinds {
			t.Run(p.name+" "+kind, func(t *testing.T) {
				id := due(t, db, p.channel)
				sender := p.sender(t, kind)
				o := engine.Options{Action: automation.ActionInvoiceReminder, Store: store, Logger: logger, Margin: time.Second}
				if p.channel == automation.ChannelSMS {
					o.SMS = sender
				} else {
					o.Email = sender
				}
				e, err := engine.New(o)
				require.NoError(t, err)
				// A stalled send is abandoned at the deadline minus Margin/2.
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
				defer cancel()
				_, err = e.Process(ctx, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: []uuid.UUID{id}})
				require.NoError(t, err)

				var status, code string
				require.NoError(t, db.QueryRow(context.Background(), `select status, coalesce(error_code, '')
					from automation_deliveries where execution_id = $1`, id).Scan(&status, &code))
				switch kind {
				case kindStall, kindDrop:
					assert.Equal(t, "unknown", status, "handed over, no answer: %s", code)
				default:
					assert.Equal(t, "failed", status, "the provider refused it: %s", code)
				}
				if want := p.code[kind]; want != "" {
					assert.Equal(t, want, code)
				}
				t.Logf("delivery %s, %s", status, code)
			})
		}
	}

	found := func(where, s string) {
		t.Helper()
		for _, n := range needles {
			if strings.Contains(s, n) {
				t.Errorf("%s contains %q: %s", where, n, s)
			}
		}
	}
	// Logs: each line as written and its string values decoded.
	out := logs.String()
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		found("log line", sc.Text())
		var v map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), sc.Text())
		found("log line (decoded)", fmt.Sprint(v))
	}
	require.Greater(t, lines, len(kinds)*4, "the engine logged every send")
	assert.Contains(t, out, "z***@w***.test", "the providers' texts reach the logs, masked")
	assert.Contains(t, out, "+1******0143")

	for table, q := range map[string]string{
		"automation_execution_logs": `select row_to_json(l)::text from automation_execution_logs l`,
		"automation_deliveries":     `select (to_jsonb(d) - 'recipient')::text from automation_deliveries d`,
		"automation_check_problems": `select row_to_json(p)::text from automation_check_problems p`,
	} {
		rows, err := db.Query(context.Background(), q)
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			found(table, s)
			n++
		}
		require.NoError(t, rows.Err())
		if table != "automation_check_problems" {
			assert.Equal(t, len(kinds)*4, n, table)
		}
	}
	var masked int
	require.NoError(t, db.QueryRow(context.Background(), `select count(*) from automation_deliveries
		where error_message like '%z***@w***.test%' or error_message like '%+1******0143%'`).Scan(&masked))
	assert.Positive(t, masked, "error messages keep the masked recipient (which message failed is still readable)")
}
