package devstack

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Gateway is the local stand-in of the Supabase API gateway plus Lambda
// Function URLs: /rest/v1/... goes to the PostgREST stand-in,
// /functions/v1/<name>[/path] becomes a Function URL event for that
// function, /telnyx/... is the Telnyx-compatible SMS sink.
type Gateway struct {
	logger *slog.Logger
	mu     sync.RWMutex
	rest   http.Handler
	funcs  map[string]*Function
	telnyx http.Handler
	srv    *http.Server
	ln     net.Listener
	roots  []*http.Server // ServeAtRoot's listeners
}

// NewGateway returns a gateway with no routes mounted yet.
func NewGateway(logger *slog.Logger) *Gateway {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Gateway{logger: logger, funcs: map[string]*Function{}}
}

// SetREST mounts the PostgREST stand-in; it receives the full /rest/v1/... path.
func (g *Gateway) SetREST(h http.Handler) {
	g.mu.Lock()
	g.rest = h
	g.mu.Unlock()
}

// SetTelnyx mounts the SMS sink under /telnyx (it receives the full path).
func (g *Gateway) SetTelnyx(h http.Handler) {
	g.mu.Lock()
	g.telnyx = h
	g.mu.Unlock()
}

// AddFunction routes /functions/v1/<f.Name()> to f.
func (g *Gateway) AddFunction(f *Function) {
	g.mu.Lock()
	g.funcs[f.Name()] = f
	g.mu.Unlock()
}

// Start serves the gateway on 127.0.0.1:port (0 = a free port).
func (g *Gateway) Start(port int) error {
	ln, err := listen(port)
	if err != nil {
		return err
	}
	g.ln = ln
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.srv.Serve(ln) }()
	return nil
}

// URL is the gateway's base URL, e.g. http://127.0.0.1:54321.
func (g *Gateway) URL() string { return "http://" + g.ln.Addr().String() }

// ServeAtRoot serves the function name also at the root of its own
// listener on 127.0.0.1:port (0 = a free port), as a Lambda Function URL
// has its own host: /unsubscribe there is the function's /unsubscribe. It
// returns the listener's base URL (no trailing slash), e.g.
// http://127.0.0.1:40123. The function must be added before it is called.
func (g *Gateway) ServeAtRoot(name string, port int) (string, error) {
	ln, err := listen(port)
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.serveFunction(w, r, name+r.URL.Path)
		})}
	g.mu.Lock()
	g.roots = append(g.roots, srv)
	g.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving (requests in flight are cut).
func (g *Gateway) Close() error {
	g.mu.Lock()
	roots := g.roots
	g.mu.Unlock()
	var errs []error
	for _, srv := range roots {
		errs = append(errs, srv.Close())
	}
	if g.srv != nil {
		errs = append(errs, g.srv.Close())
	}
	return errors.Join(errs...)
}

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	g.mu.RLock()
	rest, telnyx := g.rest, g.telnyx
	g.mu.RUnlock()
	switch {
	case strings.HasPrefix(p, "/rest/v1/"):
		if rest == nil {
			writePostgrestError(w, http.StatusServiceUnavailable, "PGRST000", "the PostgREST stand-in is not mounted")
			return
		}
		rest.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/functions/v1/"):
		g.serveFunction(w, r, strings.TrimPrefix(p, "/functions/v1/"))
	case strings.HasPrefix(p, "/telnyx/"):
		if telnyx == nil {
			writeTelnyxError(w, http.StatusServiceUnavailable, "10007", "Unavailable", "the SMS sink is not mounted")
			return
		}
		telnyx.ServeHTTP(w, r)
	case p == "/healthz":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func writePostgrestError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "details": nil, "hint": nil})
}

func (g *Gateway) serveFunction(w http.ResponseWriter, r *http.Request, rest string) {
	name, sub, _ := strings.Cut(rest, "/")
	g.mu.RLock()
	f := g.funcs[name]
	g.mu.RUnlock()
	if f == nil {
		writeJSONError(w, http.StatusNotFound, "function not found: "+name)
		return
	}
	body, err := readLimited(r.Body, maxFunctionURLPayload)
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}
	ev := FunctionURLEvent(r, "/"+sub, body, name)
	payload, err := json.Marshal(ev)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "encode event")
		return
	}
	start := time.Now()
	result, fnErr, err := f.Invoke(r.Context(), payload)
	if err != nil {
		g.logger.Warn("gateway: function unreachable", "function", name, "error", err.Error())
		writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	g.logger.Debug("gateway: function invoked", "function", name, "function_error", fnErr, "elapsed_ms", time.Since(start).Milliseconds())
	WriteFunctionURLResponse(w, result, fnErr)
}
