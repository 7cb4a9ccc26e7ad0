// Package devstack runs dueflow without the cloud: a
// private Postgres 15 + pg_cron with the Supabase compat SQL and the
// migrations, a pg_net stand-in worker, a gateway with the PostgREST RPC
// stand-in, Lambda Function URLs in front of the real function binaries
// under the Runtime Interface Emulator, an SMTP inbox (in-process capture or
// Mailpit) and a Telnyx-compatible SMS sink. It is for development and tests
// only; production code does not know it exists.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/lambdafns"
	"github.com/dueflow/dueflow/internal/localports"
	"github.com/dueflow/dueflow/internal/pgcluster"
	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/internal/supacompat"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/webhook"
	sqlfiles "github.com/dueflow/dueflow/sql"
)

// Database is the name of the application database the stack creates.
const Database = "dueflow"

// Config configures Start. Zero values are what tests want (free ports, the
// in-process SMTP capture); the demo sets the fixed ports and UseMailpit.
type Config struct {
	Root          string // repo root (functions/ lives there)
	StateDir      string // working dir for data, logs, binaries (e.g. <root>/.dueflow)
	PGPort        int    // 54322 for the demo; 0 = free port (tests)
	GatewayPort   int    // 54321 for the demo; 0 = free
	SMTPPort      int    // 54325 for Mailpit in the demo; 0 = free
	MailpitUIPort int    // 54324; only when UseMailpit (0 = free)
	UseMailpit    bool   // demo: run bin/mailpit; tests: an in-process go-smtp capture server
	SMSProvider   string // "telnyx" (default): the Telnyx-compatible sink inside the gateway
	Functions     []string
	Logger        *slog.Logger
	Progress      func(msg string) // human progress lines

	// NoCron keeps pg_cron out of the dueflow database (its jobs are then not
	// scheduled there), so that only Tick drives the pipeline: for tests that
	// count what one cycle does. The demo leaves it false: pg_cron runs the
	// jobs every minute in the dueflow database.
	NoCron bool
	// FastPostgres turns off durability (fsync ...): for throw-away stacks.
	FastPostgres bool
	// Instances is the number of execution environments (RIE instances) per
	// function, i.e. the function's concurrency (default 1).
	Instances int
	// FunctionTimeout is every function's timeout (AWS_LAMBDA_FUNCTION_TIMEOUT,
	// whole seconds, rounded up; default 60 s, template.yaml's): the RIE
	// gives each invocation that deadline. Fault tests shorten it.
	FunctionTimeout time.Duration
	// ProviderEventsPort is the port of provider-events' own Function URL
	// listener (0 = free).
	ProviderEventsPort int
	// FunctionEnv is added to (and overrides) every function's environment,
	// e.g. DUEFLOW_LEASE_SECONDS=5.
	FunctionEnv []string
	// NetConcurrency bounds the pg_net stand-in's requests in flight (default 32).
	NetConcurrency int
	// BuiltFunctions maps function names to bootstrap binaries already built
	// (tests build once per binary); missing ones are built.
	BuiltFunctions map[string]string
	// CoreOnly applies the core migrations without the reference domain, as
	// an adopting app has them: its own migration then defines the source
	// views and hooks. The demo leaves it false (its data is reference data).
	CoreOnly bool
	// UseSecretKey gives the functions a secret API key (sb_secret_…, as
	// SUPABASE_SECRET_KEY) instead of the legacy service_role JWT (as
	// SUPABASE_SERVICE_ROLE_KEY). The gateway accepts both either way.
	UseSecretKey bool
}

// TickResult describes one cycle run by Tick.
type TickResult struct {
	Steps     []TickStep    // each cron job's SQL with its result
	Requests  int           // HTTP requests the pg_net stand-in sent during the cycle
	Responses []NetResponse // their outcomes, in completion order
	Elapsed   time.Duration
}

// TickStep is one SQL statement of a cycle and what it returned.
type TickStep struct {
	SQL     string
	Result  string
	Elapsed time.Duration
}

// String is a one-line human summary.
func (t TickResult) String() string {
	var b strings.Builder
	for i, s := range t.Steps {
		if i > 0 {
			b.WriteString(", ")
		}
		name := strings.TrimSuffix(strings.TrimPrefix(s.SQL, "select public."), "()")
		fmt.Fprintf(&b, "%s=%s", name, s.Result)
	}
	ok, failed := 0, 0
	for _, r := range t.Responses {
		if r.StatusCode >= 200 && r.StatusCode < 300 {
			ok++
		} else {
			failed++
		}
	}
	fmt.Fprintf(&b, "; %d function call(s): %d ok, %d failed; %s", t.Requests, ok, failed, t.Elapsed.Round(time.Millisecond))
	return b.String()
}

// TickSQL is what the pg_cron jobs run each minute, in the order Tick runs it.
var TickSQL = []string{
	"select public.check_automation_triggers()",
	"select public.check_overdue_invoices()",
	"select public.check_maintenance_reminders()",
	"select public.process_pending_automations()",
}

// WebhookSecretName is the Vault secret the dispatcher signs with.
const WebhookSecretName = "dueflow_webhook_secret"

// Stack is a running local dueflow.
type Stack struct {
	cfg      Config
	logger   *slog.Logger
	logDir   string
	cluster  *pgcluster.Cluster
	pgOpts   pgcluster.Options
	pgMu     sync.Mutex // StopPostgres / StartPostgres / Close
	pgDown   bool       // stopped by StopPostgres
	dsn      string
	pool     *pgxpool.Pool
	gateway  *Gateway
	telnyx   *TelnyxSink
	capture  *SMTPCapture
	mailpit  *Mailpit
	funcs    map[string]*Function
	worker   *NetWorker
	jwt      string
	roleKey  string
	apiKey   string // the secret API key (sb_secret_…) the gateway accepts
	whsec    string
	peURL    string // provider-events' Function URL (its own listener's root)
	smsKey   string
	unsubKey []byte // signs the one-click unsubscribe tokens
	respMu   sync.Mutex
	resps    []NetResponse
	tickMu   sync.Mutex
	closeMu  sync.Mutex
	closed   bool
	stopWait chan struct{}
}

func (s *Stack) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.logger.Info(msg)
	if s.cfg.Progress != nil {
		s.cfg.Progress(msg)
	}
}

// Start brings the whole stack up. On error everything started so far is
// stopped. Cancelling ctx later stops the stack too (as Close does).
//
// Long: brings the local stack up component by component, each with its stop on failure
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Root == "" {
		return nil, errors.New("devstack: Config.Root is required")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Root, ".dueflow")
	}
	if cfg.SMSProvider == "" {
		cfg.SMSProvider = "telnyx"
	}
	if cfg.SMSProvider != "telnyx" {
		return nil, fmt.Errorf("devstack: SMS provider %q has no local sink (only telnyx)", cfg.SMSProvider)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("devstack: root: %w", err)
	}
	cfg.Root = root
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("devstack: state dir: %w", err)
	}
	cfg.StateDir = state
	s := &Stack{cfg: cfg, logger: cfg.Logger, logDir: filepath.Join(state, "logs"), funcs: map[string]*Function{}, stopWait: make(chan struct{})}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	names := cfg.Functions
	if len(names) == 0 {
		if names, err = lambdafns.Names(root); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
	}
	if err := s.startPostgres(ctx); err != nil {
		return nil, err
	}
	if err := s.startMail(ctx); err != nil {
		return nil, err
	}
	if err := s.startGateway(ctx); err != nil {
		return nil, err
	}
	if err := s.register(ctx, names); err != nil {
		return nil, err
	}
	if err := s.startFunctions(ctx, names); err != nil {
		return nil, err
	}
	s.worker, err = StartNetWorker(ctx, NetWorkerConfig{
		DSN:         s.dsn,
		Concurrency: cfg.NetConcurrency,
		Logger:      s.logger.With("component", "pg_net"),
		OnResponse:  s.recordResponse,
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s.progress("pg_net stand-in worker listening on channel %s", supacompat.NotifyChannel)
	s.progress("ready: gateway %s, postgres %s, logs in %s", s.GatewayURL(), s.dsn, s.logDir)
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close(context.Background())
		case <-s.stopWait:
		}
	}()
	return s, nil
}

// Long: a sequence of start steps with their cleanup on failure
func (s *Stack) startPostgres(ctx context.Context) error {
	cronDB := Database
	if s.cfg.NoCron {
		cronDB = ""
	}
	s.progress("starting postgres 15 + pg_cron (data in %s)", filepath.Join(s.cfg.StateDir, "pg"))
	s.pgOpts = pgcluster.Options{
		Dir:          filepath.Join(s.cfg.StateDir, "pg"),
		Port:         s.cfg.PGPort,
		Logger:       s.logger.With("component", "pgcluster"),
		Fast:         s.cfg.FastPostgres,
		CronDatabase: cronDB,
	}
	c, err := pgcluster.Start(ctx, s.pgOpts)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.cluster = c
	s.pgOpts.Port = c.Port() // a restart (StartPostgres) comes back on it
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	var exists bool
	err = admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", Database).Scan(&exists)
	if err == nil && !exists {
		_, err = admin.Exec(ctx, "create database "+pgx.Identifier{Database}.Sanitize())
	}
	admin.Close(ctx)
	if err != nil {
		return fmt.Errorf("devstack: create database %s: %w", Database, err)
	}
	s.dsn = c.DSN(Database)
	pcfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	pcfg.MaxConns = 16
	pcfg.ConnConfig.DialFunc = localports.DialContext // no TIME-WAIT left on the demo's ports
	pcfg.ConnConfig.RuntimeParams["application_name"] = "dueflow devstack"
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return fmt.Errorf("devstack: connect %s: %w", Database, err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("devstack: connect %s: %w", Database, err)
	}
	defer conn.Release()
	if err := supacompat.Apply(ctx, conn); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if err := pgcluster.ApplyFS(ctx, conn, sqlfiles.FS()); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	// the demo data and most of the stack's tests live in the reference domain
	if !s.cfg.CoreOnly {
		if err := pgcluster.ApplyFS(ctx, conn, sqlfiles.ReferenceFS()); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	s.progress("postgres ready on 127.0.0.1:%d, database %s migrated (pg_cron jobs in %s; server log %s)", c.Port(), Database, c.CronDatabase(), c.LogFile())
	return nil
}

func (s *Stack) startMail(ctx context.Context) error {
	if s.cfg.UseMailpit {
		bin, err := ToolPath(s.cfg.Root, "mailpit")
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		m, err := StartMailpit(ctx, bin, s.cfg.SMTPPort, s.cfg.MailpitUIPort, filepath.Join(s.logDir, "mailpit.log"))
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		s.mailpit = m
		s.progress("mailpit: SMTP on %s, inbox on %s", m.SMTPAddr(), m.UIURL())
		return nil
	}
	c, err := StartSMTPCapture(s.cfg.SMTPPort)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.capture = c
	s.progress("SMTP capture server on %s", c.Addr())
	return nil
}

func (s *Stack) smtpPort() int {
	if s.mailpit != nil {
		return s.mailpit.SMTPPort()
	}
	return s.capture.Port()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// makeKeys draws the stack's keys: the JWT secret, the legacy service_role
// JWT, the secret API key and the SMS sink's key.
func (s *Stack) makeKeys() error {
	s.jwt = hex.EncodeToString(randomBytes(32))
	key, err := postgrest.SignJWT(s.jwt, "service_role", 0)
	if err != nil {
		return fmt.Errorf("devstack: sign service role key: %w", err)
	}
	s.roleKey = key
	s.apiKey = postgrest.NewSecretKey()
	s.smsKey = "KEY" + strings.ToUpper(hex.EncodeToString(randomBytes(16)))
	s.unsubKey = randomBytes(32)
	return nil
}

func (s *Stack) startGateway(ctx context.Context) error {
	if err := s.makeKeys(); err != nil {
		return err
	}
	s.telnyx = NewTelnyxSink(s.smsKey)
	s.gateway = NewGateway(s.logger.With("component", "gateway"))
	s.gateway.SetREST(postgrest.New(s.pool, s.jwt, s.logger.With("component", "postgrest")).WithSecretKey(s.apiKey))
	s.gateway.SetTelnyx(s.telnyx)
	if err := s.gateway.Start(s.cfg.GatewayPort); err != nil {
		return fmt.Errorf("devstack: gateway: %w", err)
	}
	// provider-events answers at the root of its Function URL (DUEFLOW_PUBLIC_URL
	// is a root URL), as in AWS: its own listener
	u, err := s.gateway.ServeAtRoot(ProviderEventsFunction, s.cfg.ProviderEventsPort)
	if err != nil {
		return fmt.Errorf("devstack: provider-events Function URL: %w", err)
	}
	s.peURL = u
	s.telnyx.SetWebhookURL(s.ProviderEventsURL() + "/telnyx")
	s.progress("gateway on %s: /rest/v1/rpc/<fn> (PostgREST stand-in), /functions/v1/<name> (Function URLs), /telnyx/v2/messages (SMS sink); provider-events' Function URL %s", s.GatewayURL(), s.peURL)
	return nil
}

// validSecret reports whether a stored secret is one the functions take.
func validSecret(s string) bool {
	_, err := webhook.ParseSecret(s)
	return err == nil
}

// register stores the webhook secret in the Vault stand-in (reusing the one
// a previous run stored) and points each action's endpoint at the gateway.
func (s *Stack) register(ctx context.Context, names []string) error {
	var existing string
	err := s.pool.QueryRow(ctx, "select decrypted_secret from vault.decrypted_secrets where name = $1 order by created_at desc limit 1", WebhookSecretName).Scan(&existing)
	switch {
	case err == nil && validSecret(existing):
		s.whsec = existing
	case err == nil || errors.Is(err, pgx.ErrNoRows):
		s.whsec = webhook.NewSecret()
	default:
		return fmt.Errorf("devstack: read vault secret: %w", err)
	}
	for _, n := range names {
		if !automation.IsAction(n) {
			continue // provider-events is called by the providers, not pg_net
		}
		url := s.GatewayURL() + "/functions/v1/" + n
		if _, err := s.pool.Exec(ctx, "select public.automation_register_endpoint($1, $2, $3)", n, url, s.whsec); err != nil {
			return fmt.Errorf("devstack: register endpoint %s: %w", n, err)
		}
	}
	return nil
}

// FunctionEnvironment is the environment every function runs with.
func (s *Stack) FunctionEnvironment() []string {
	key := "SUPABASE_SERVICE_ROLE_KEY=" + s.roleKey
	if s.cfg.UseSecretKey {
		key = "SUPABASE_SECRET_KEY=" + s.apiKey
	}
	env := []string{
		"SUPABASE_URL=" + s.GatewayURL(),
		key,
		"DUEFLOW_WEBHOOK_SECRET=" + s.whsec,
		"EMAIL_PROVIDER=smtp",
		"EMAIL_FROM=reminders@dueflow.local",
		"EMAIL_FROM_NAME=dueflow",
		"SMTP_HOST=127.0.0.1",
		"SMTP_PORT=" + strconv.Itoa(s.smtpPort()),
		"SMTP_TLS=none",
		"SMS_PROVIDER=" + s.cfg.SMSProvider,
		"SMS_FROM=+15005550006",
		"TELNYX_API_KEY=" + s.smsKey,
		"TELNYX_API_BASE=" + s.GatewayURL() + "/telnyx",
		"LOG_LEVEL=info",
		// provider-events: the keys that verify what the sink and links send
		"DUEFLOW_UNSUBSCRIBE_KEYS=" + base64.StdEncoding.EncodeToString(s.unsubKey),
		"TELNYX_PUBLIC_KEY=" + base64.StdEncoding.EncodeToString(s.telnyx.PublicKey()),
		"DUEFLOW_PUBLIC_URL=" + s.ProviderEventsURL(),
	}
	return mergeEnv(env, s.cfg.FunctionEnv)
}

// mergeEnv returns base with the variables of over added or replaced.
func mergeEnv(base, over []string) []string {
	idx := map[string]int{}
	out := append([]string(nil), base...)
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
		} else {
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

func (s *Stack) startFunctions(ctx context.Context, names []string) error {
	rie, err := ToolPath(s.cfg.Root, "aws-lambda-rie")
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	built := map[string]string{}
	var toBuild []string
	for _, n := range names {
		if p, ok := s.cfg.BuiltFunctions[n]; ok {
			built[n] = p
		} else {
			toBuild = append(toBuild, n)
		}
	}
	if len(toBuild) > 0 {
		s.progress("building functions (%s)…", strings.Join(toBuild, ", "))
		b, err := BuildNamed(ctx, s.cfg.Root, filepath.Join(s.cfg.StateDir, "fn"), toBuild...)
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		for k, v := range b {
			built[k] = v
		}
	}
	env := s.FunctionEnvironment()
	for _, n := range names {
		spec := FunctionSpec{Name: n, Bootstrap: built[n], Env: append(slices.Clip(env), lambdafns.Env(n)...), Instances: s.cfg.Instances,
			TimeoutS: int((s.cfg.FunctionTimeout + time.Second - 1) / time.Second)}
		f := NewFunction(spec, rie, s.logDir, s.logger.With("component", "rie", "function", n))
		s.funcs[n] = f
		if err := f.Start(ctx); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		s.gateway.AddFunction(f)
		s.progress("function %s under the Lambda RIE (%d instance(s)) at %s/functions/v1/%s, log %s", n, max(1, s.cfg.Instances), s.GatewayURL(), n, f.LogPath(0))
	}
	return nil
}

func (s *Stack) recordResponse(r NetResponse) {
	s.respMu.Lock()
	s.resps = append(s.resps, r)
	s.respMu.Unlock()
}

// DSN is the superuser DSN of the dueflow database.
func (s *Stack) DSN() string { return s.dsn }

// GatewayURL is the base URL of the gateway (SUPABASE_URL of the functions).
func (s *Stack) GatewayURL() string { return s.gateway.URL() }

// LogDir is where every child process writes its log.
func (s *Stack) LogDir() string { return s.logDir }

// Pool is the stack's superuser connection pool to the dueflow database.
func (s *Stack) Pool() *pgxpool.Pool { return s.pool }

// ServiceRoleKey is the legacy service_role JWT (what the functions use unless
// Config.UseSecretKey).
func (s *Stack) ServiceRoleKey() string { return s.roleKey }

// SecretKey is the secret API key (sb_secret_…) the gateway accepts as the
// service_role; the functions use it with Config.UseSecretKey.
func (s *Stack) SecretKey() string { return s.apiKey }

// ProviderEventsFunction is the name of the function the providers call
// (functions/provider-events); it is not an action, pg_net never rings it.
const ProviderEventsFunction = "provider-events"

// ProviderEventsURL is the local Function URL of provider-events: the root
// of its own listener (ServeAtRoot), without a trailing slash; the gateway's
// /functions/v1/provider-events reaches the same function.
func (s *Stack) ProviderEventsURL() string { return s.peURL }

// UnsubscribeKey is the key the stack's one-click unsubscribe tokens are
// signed with (DUEFLOW_UNSUBSCRIBE_KEYS).
func (s *Stack) UnsubscribeKey() []byte { return s.unsubKey }

// JWTSecret is the HS256 secret of the PostgREST stand-in.
func (s *Stack) JWTSecret() string { return s.jwt }

// WebhookSecret is the whsec_ secret shared by the dispatcher and functions.
func (s *Stack) WebhookSecret() string { return s.whsec }

// Function returns the running function name (for fault injection), or nil.
func (s *Stack) Function(name string) *Function { return s.funcs[name] }

// NetWorker is the pg_net stand-in.
func (s *Stack) NetWorker() *NetWorker { return s.worker }

// SMTPCapture is the in-process SMTP server (nil with Mailpit).
func (s *Stack) SMTPCapture() *SMTPCapture { return s.capture }

// Telnyx is the SMS sink.
func (s *Stack) Telnyx() *TelnyxSink { return s.telnyx }

// StopPostgres shuts the stack's Postgres down (fast mode: open
// connections are cut), as a database restart or failover does; every
// client sees it (the functions' RPCs through the PostgREST stand-in, the
// pg_net stand-in, Pool). StartPostgres brings it back.
func (s *Stack) StopPostgres(ctx context.Context) error {
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	if err := s.cluster.Stop(ctx); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.pgDown = true
	s.progress("postgres stopped")
	return nil
}

// StartPostgres starts the Postgres StopPostgres stopped again, on the same
// data directory and port; clients reconnect on their own.
func (s *Stack) StartPostgres(ctx context.Context) error {
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	c, err := pgcluster.Start(ctx, s.pgOpts)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.cluster = c
	s.pgDown = false
	s.progress("postgres started again on 127.0.0.1:%d", c.Port())
	return nil
}

// Tick runs the SQL the cron jobs run, in order, then waits until the pg_net
// stand-in has sent everything queued and recorded the functions' answers.
func (s *Stack) Tick(ctx context.Context) (TickResult, error) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	start := time.Now()
	s.respMu.Lock()
	from := len(s.resps)
	s.respMu.Unlock()
	var res TickResult
	for _, q := range TickSQL {
		t0 := time.Now()
		var out *string
		if err := s.pool.QueryRow(ctx, "select ("+strings.TrimPrefix(q, "select ")+")::text").Scan(&out); err != nil {
			return res, fmt.Errorf("tick: %s: %w", q, err)
		}
		step := TickStep{SQL: q, Elapsed: time.Since(t0)}
		if out != nil {
			step.Result = *out
		}
		res.Steps = append(res.Steps, step)
	}
	if err := s.worker.Drain(ctx); err != nil {
		return res, fmt.Errorf("tick: %w", err)
	}
	s.respMu.Lock()
	res.Responses = append([]NetResponse(nil), s.resps[from:]...)
	s.respMu.Unlock()
	res.Requests = len(res.Responses)
	res.Elapsed = time.Since(start)
	s.logger.Info("tick", "requests", res.Requests, "elapsed_ms", res.Elapsed.Milliseconds())
	return res, nil
}

// Emails returns every message the inbox holds, oldest first.
func (s *Stack) Emails(ctx context.Context) ([]Email, error) {
	if s.mailpit != nil {
		return s.mailpit.Messages(ctx)
	}
	return s.capture.Messages(), nil
}

// SMS returns every message the Telnyx sink recorded, oldest first.
func (s *Stack) SMS() []SMS { return s.telnyx.Messages() }

// Processes lists the stack's processes by role: "postgres" (postmaster and
// backends), "rie:<fn>" (emulator and bootstrap), "mailpit".
func (s *Stack) Processes() map[string][]int {
	out := map[string][]int{}
	if s.cluster != nil {
		if b, err := os.ReadFile(filepath.Join(s.cluster.Dir(), "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
				out["postgres"] = append([]int{pid}, descendants(pid)...)
			}
		}
	}
	for n, f := range s.funcs {
		out["rie:"+n] = f.Pids()
	}
	if s.mailpit != nil {
		out["mailpit"] = s.mailpit.proc.Pids()
	}
	for k := range out {
		sort.Ints(out[k])
	}
	return out
}

// Close stops every process the stack started and frees its ports. It is
// safe to call more than once.
func (s *Stack) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stopWait)
	var errs []error
	if s.worker != nil {
		s.worker.Close()
	}
	if s.gateway != nil {
		errs = append(errs, s.gateway.Close())
	}
	for _, f := range s.funcs {
		errs = append(errs, f.Stop(ctx))
	}
	if s.mailpit != nil {
		errs = append(errs, s.mailpit.Stop(ctx))
	}
	if s.capture != nil {
		errs = append(errs, s.capture.Close(ctx))
	}
	if s.pool != nil {
		s.pool.Close()
	}
	s.pgMu.Lock()
	if s.cluster != nil && !s.pgDown {
		errs = append(errs, s.cluster.Stop(ctx))
	}
	s.pgMu.Unlock()
	err := errors.Join(errs...)
	if err != nil {
		return fmt.Errorf("devstack: close: %w", err)
	}
	return nil
}

// EmailCount is the number of emails the inbox holds.
func (s *Stack) EmailCount(ctx context.Context) (int, error) {
	if s.mailpit != nil {
		return s.mailpit.Count(ctx)
	}
	return s.capture.Count(), nil
}
