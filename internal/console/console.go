// Package console is `dueflow console`: the operator's web console, Go
// net/http with server-rendered html/template pages (CSS embedded, no
// scripts), over internal/opsdb. Pages: executions, one execution (with
// retry, cancel and settle), workflows (pause, resume), cron jobs and queue
// health, analytics (server-side SVG) and, in the local stack, the outbox
// of captured emails and SMS. Read-only unless Config.Actions; every action
// is logged (ids only) and recorded in the database with its actor.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/opsdb"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Outbox is what the local stack captured: devstack.Stack provides it.
type Outbox interface {
	Emails(ctx context.Context) ([]devstack.Email, error)
	SMS() []devstack.SMS
}

// Config is what a console serves and who may use it.
type Config struct {
	DB      opsdb.DB
	Token   string // required to log in; "" = no login (loopback addresses only: CheckBind)
	Actions bool   // retry, cancel, settle, pause, resume enabled
	Actor   string // who acts when there is no login (e.g. the OS user)
	Outbox  Outbox // nil: no outbox page
	Logger  *slog.Logger
	Timeout time.Duration // per request; default 10s
	// Counts bounds the executions page's counts per state and the
	// workflows page's open executions (zero: opsdb.CountCap and
	// opsdb.CountBudget).
	Counts opsdb.CountLimits
}

// CheckBind refuses an address other than a loopback one without a token.
func CheckBind(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if token != "" {
		return nil
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("address %s is not a loopback address: set a login token (--token or DUEFLOW_CONSOLE_TOKEN)", addr)
}

// Server is the console's http.Handler.
type Server struct {
	cfg    Config
	tmpl   map[string]*template.Template
	mux    *http.ServeMux
	secret []byte // signs session cookies and form tokens
}

// New returns the console for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("console: no database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if strings.TrimSpace(cfg.Actor) == "" {
		cfg.Actor = "console"
	}
	s := &Server{cfg: cfg, tmpl: map[string]*template.Template{}, mux: http.NewServeMux(), secret: make([]byte, 32)}
	if _, err := rand.Read(s.secret); err != nil {
		return nil, fmt.Errorf("console: session key: %w", err)
	}
	for _, page := range []string{"executions", "execution", "workflows", "cron", "analytics", "outbox", "login", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", page, err)
		}
		s.tmpl[page] = t
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.Handle("GET /static/", http.FileServerFS(assets))
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/executions", http.StatusSeeOther)
	})
	m.HandleFunc("GET /executions", s.auth(s.executions))
	m.HandleFunc("GET /executions/{id}", s.auth(s.execution))
	m.HandleFunc("POST /executions/{id}/{action}", s.auth(s.act))
	m.HandleFunc("POST /deliveries/{id}/{action}", s.auth(s.act))
	m.HandleFunc("GET /workflows", s.auth(s.workflows))
	m.HandleFunc("POST /workflows/{id}/{action}", s.auth(s.act))
	m.HandleFunc("GET /cron", s.auth(s.cron))
	m.HandleFunc("GET /analytics", s.auth(s.analytics))
	m.HandleFunc("GET /outbox", s.auth(s.outbox))
	m.HandleFunc("GET /outbox/email/{n}", s.auth(s.emailHTML))
}

// ServeHTTP serves the console with its security headers: no framing by
// others, no scripts anywhere (the pages need none).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/outbox/email/") {
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
	}
	if s.cfg.Token == "" && !loopbackHost(r.Host) {
		// Without a login the console trusts whoever reaches it, which only
		// a loopback bind makes safe: a page of another site whose name is
		// rebound to 127.0.0.1 sends its own Host and is refused here.
		http.Error(w, "the console without a token answers only to localhost, 127.0.0.1 or [::1]", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// loopbackHost reports whether a request's Host names this machine by a
// loopback name or address (any port).
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.Trim(host, "[]")
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Serve serves the console on addr until ctx ends (CheckBind first).
func Serve(ctx context.Context, addr string, h http.Handler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// Sessions: a cookie "dueflow_console" = actor|expiry|hmac. Form tokens:
// hmac of the session cookie (or "local"), checked on every POST.

const cookieName = "dueflow_console"

func (s *Server) sign(v string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// actor is who the request acts as, "" when it must log in first.
func (s *Server) actor(r *http.Request) string {
	if s.cfg.Token == "" {
		return s.cfg.Actor
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 3 || !hmac.Equal([]byte(s.sign(parts[0]+"|"+parts[1])), []byte(parts[2])) {
		return ""
	}
	exp, err := time.Parse(time.RFC3339, parts[1])
	if err != nil || time.Now().After(exp) {
		return ""
	}
	return parts[0]
}

// formToken is the anti-forgery token of this request's session.
func (s *Server) formToken(r *http.Request) string {
	v := "local"
	if c, err := r.Cookie(cookieName); err == nil {
		v = c.Value
	}
	return s.sign("form|" + v)
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.actor(r) == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		http.Redirect(w, r, "/executions", http.StatusSeeOther)
		return
	}
	s.render(w, r, "login", "Log in", map[string]any{})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		http.Redirect(w, r, "/executions", http.StatusSeeOther)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	token := r.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) != 1 || name == "" || len(name) > 100 || strings.ContainsAny(name, "|\r\n") {
		s.cfg.Logger.Warn("console login refused", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, "login", "Log in", map[string]any{"Error": "wrong token, or no name given"})
		return
	}
	exp := time.Now().Add(12 * time.Hour).UTC().Format(time.RFC3339)
	v := name + "|" + exp
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v + "|" + s.sign(v), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 12 * 3600})
	s.cfg.Logger.Info("console login", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/executions", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
