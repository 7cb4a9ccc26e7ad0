// Package function runs a Lambda function's handler: it reads the secrets
// (Secrets Manager or the environment), calls the function's Builder (the
// wiring in functions/action/main.go or functions/provider-events/main.go) and rebuilds the handler when the
// secrets change (Live). It also holds the small helpers the functions'
// wirings share (EngineOptions, UnsubscribeLinks, Logger).
package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/secrets"
	"github.com/dueflow/dueflow/shared/unsubscribe"
)

// started approximates the process start (package initialisation).
var started = time.Now()

// Init starts the function name, whose handler build makes, for the Lambda
// runtime (lambda.Start(f.HandleFunctionURL)): secrets, configuration and
// handler, logged "function ready" as JSON on stdout. A secret that cannot
// be read or a configuration error ends the process at cold start with
// every problem named (never a value).
func Init(name string, build Builder) *Live {
	f, err := Start(context.Background(), name, build, os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	attrs := []any{"function", name}
	if cfg := f.Config(); cfg != nil {
		attrs = []any{"action", name, "email_provider", cfg.EmailProvider, "sms_provider", cfg.SMSProvider}
	}
	f.log.Info("function ready", append(attrs, "init_ms", time.Since(started).Milliseconds(),
		"secrets", f.cache.Source().Name(), "secrets_max_age_s", int(f.cache.MaxAge().Seconds()))...)
	return f
}

// Handler serves a function's requests from Lambda Function URL events
// and over net/http.
type Handler interface {
	HandleFunctionURL(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error)
	http.Handler
}

// Built is one build of a function's handler from one version of its
// settings.
type Built struct {
	Handler  Handler
	LogLevel slog.Level
	// Close releases what the handler holds open (nil: nothing); called
	// once its requests have ended after a rebuild.
	Close func()
	// Config is the actions' configuration (nil for other functions).
	Config *config.Config
}

// Builder builds a function's handler from its settings: getenv answers
// the secret keys from the secret, the others from the environment.
type Builder func(getenv func(string) string, log *slog.Logger) (Built, error)

// Logger returns the JSON logger of a function.
func Logger(w io.Writer, level slog.Level) *slog.Logger { return logger(w, level) }

func logger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Live is a function whose handler follows its secrets: before each
// request it re-reads them when older than their max age (bounded, see
// secrets.Cache) and, when they changed, rebuilds the store, senders,
// engine and verifier for this and later requests; the previous senders
// are closed once their requests have ended. A rebuild that fails (the
// new values make an invalid configuration) is logged and the previous
// handler kept.
type Live struct {
	action  string
	builder Builder
	getenv  func(string) string
	cache   *secrets.Cache
	log     *slog.Logger
	level   *slog.LevelVar

	mu       sync.Mutex
	gen      *generation
	tried    uint64       // secrets version last built (or tried)
	onRetire func(uint64) // tests: called with a retired generation's version once closed
}

// generation is one build of the handler from one version of the secrets.
type generation struct {
	h        Handler
	cfg      *config.Config
	level    slog.Level
	version  uint64
	close    func()
	inflight int
	retired  bool
}

// Start reads the secrets (DUEFLOW_SECRET_ID, else the environment)
// through getenv and builds the function name with build; it logs JSON to
// w.
func Start(ctx context.Context, name string, build Builder, getenv func(string) string, w io.Writer) (*Live, error) {
	settings, err := secrets.SettingsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	// the SDK's configuration and the first read share the cold-start bound
	cctx, cancel := context.WithTimeout(ctx, secrets.ColdStartTimeout)
	defer cancel()
	src, maxAge, err := secrets.Open(cctx, settings, getenv, config.SecretKeys)
	if err != nil {
		return nil, err
	}
	l := &Live{action: name, builder: build, getenv: getenv, level: new(slog.LevelVar)}
	l.log = logger(w, l.level)
	if l.cache, err = secrets.NewCache(cctx, src, maxAge, secrets.WithLogger(l.log)); err != nil {
		return nil, err
	}
	values, version := l.cache.Values()
	if l.gen, err = l.build(values, version); err != nil {
		return nil, err
	}
	l.tried = version
	l.level.Set(l.gen.level)
	return l, nil
}

// build makes a generation from one version of the secrets.
func (l *Live) build(values map[string]string, version uint64) (*generation, error) {
	getenv, err := config.Overlay(l.getenv, values)
	if err != nil {
		return nil, err
	}
	b, err := l.builder(getenv, l.log)
	if err != nil {
		return nil, err
	}
	if b.Close == nil {
		b.Close = func() {}
	}
	return &generation{h: b.Handler, cfg: b.Config, level: b.LogLevel, version: version, close: b.Close}, nil
}

// Config is the configuration of the current handler (nil for a function
// that is not an action's).
func (l *Live) Config() *config.Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen.cfg
}

// acquire refreshes the secrets if due, rebuilds on a change and returns
// the generation to serve one request with; release it after.
func (l *Live) acquire(ctx context.Context) *generation {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := l.cache.Refresh(ctx); v != l.tried {
		l.tried = v
		values, version := l.cache.Values()
		g, err := l.build(values, version)
		if err != nil {
			l.log.ErrorContext(ctx, "secrets changed but the function cannot be rebuilt with them; keeping the previous values",
				"action", l.action, "secrets_version", version, "error", err.Error())
		} else {
			old := l.gen
			l.gen = g
			l.level.Set(g.level)
			old.retired = true
			if old.inflight == 0 {
				go l.retire(old)
			}
			l.log.InfoContext(ctx, "function rebuilt with changed secrets", "action", l.action, "secrets_version", version)
		}
	}
	l.gen.inflight++
	return l.gen
}

func (l *Live) release(g *generation) {
	l.mu.Lock()
	g.inflight--
	last := g.retired && g.inflight == 0
	l.mu.Unlock()
	if last {
		go l.retire(g)
	}
}

// retire closes what a replaced generation holds open (the SMTP pool).
func (l *Live) retire(g *generation) {
	g.close()
	if l.onRetire != nil {
		l.onRetire(g.version)
	}
}

// HandleFunctionURL handles a Lambda Function URL event with the current
// handler (see lambdaurl.Handler).
func (l *Live) HandleFunctionURL(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	g := l.acquire(ctx)
	defer l.release(g)
	return g.h.HandleFunctionURL(ctx, ev)
}

// ServeHTTP serves a request over net/http with the current handler.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := l.acquire(r.Context())
	defer l.release(g)
	g.h.ServeHTTP(w, r)
}

// UnsubscribeTTL is how long a one-click unsubscribe link works: mail
// clients may POST it long after delivery.
const UnsubscribeTTL = 365 * 24 * time.Hour

// UnsubscribeLinks returns the engine's Unsubscribe from cfg: links
// cfg.PublicURL + "/unsubscribe?t=<token>", signed with the first of
// cfg's unsubscribe keys, valid UnsubscribeTTL from now; nil when the keys
// are not configured.
func UnsubscribeLinks(cfg *config.Config, now func() time.Time) func(uuid.UUID, string, string) (string, error) {
	keys := cfg.UnsubscribeKeyBytes()
	if len(keys) == 0 || cfg.PublicURL == "" {
		return nil
	}
	key, base := keys[0], cfg.PublicURL
	return func(org uuid.UUID, client, channel string) (string, error) {
		tok, err := unsubscribe.Sign(key, unsubscribe.Claims{OrganizationID: org.String(), ClientID: client,
			Channel: channel, Expires: now().Add(UnsubscribeTTL)})
		if err != nil {
			return "", err
		}
		return base + "/unsubscribe?t=" + url.QueryEscape(tok), nil
	}
}

// EngineOptions are the engine's options for cfg's action, with its store
// and senders (sms nil when SMS_PROVIDER is none).
func EngineOptions(cfg *config.Config, store engine.Store, email, sms notify.Sender, log *slog.Logger) engine.Options {
	return engine.Options{
		Action: cfg.Action, Store: store, Email: email, SMS: sms,
		EmailFrom: cfg.EmailFrom, EmailFromName: cfg.EmailFromName,
		Concurrency: cfg.Concurrency, LedgerChunk: cfg.LedgerChunk, LeaseSeconds: cfg.LeaseSeconds, Batch: cfg.MaxIDs,
		NormalizePhone: phone.ParseE164, Logger: log,
		Unsubscribe: UnsubscribeLinks(cfg, time.Now), SMSFrom: cfg.SMSFrom,
	}
}
