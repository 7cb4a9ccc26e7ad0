// Package postgrest is a local stand-in for PostgREST's RPC endpoint
// (POST /rest/v1/rpc/<fn>), for the local stack and tests only. It does what
// Supabase's API gateway and PostgREST do for a function call: takes the
// caller's role from a JWT (HS256) in Authorization: Bearer or, without
// one, from a secret API key (sb_secret_…) in the apikey header (the
// gateway's service_role; such a key in Authorization is a malformed JWT,
// and is refused from a browser's User-Agent), switches to that role for
// the transaction, exposes the claims as
// request.jwt.claims, calls the function with named arguments typed from
// pg_proc, answers JSON (an array for set-returning functions, the value for
// scalar ones) and maps errors to PostgREST's status codes and error object
// {"code","message","details","hint"}.
package postgrest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/shared/supabase"
)

// PathPrefix is where RPCs are served.
const PathPrefix = "/rest/v1/rpc/"

// MaxBody bounds a request body.
const MaxBody = 8 << 20

// Server is the RPC stand-in; it implements http.Handler.
type Server struct {
	pool      *pgxpool.Pool
	secret    []byte
	secretKey string // the accepted sb_secret_ key; "" = none
	schema    string
	log       *slog.Logger

	mu    sync.Mutex
	cache map[string][]proc // function name -> overloads (the "schema cache")
}

// New returns a Server calling functions of schema public on pool, accepting
// tokens signed with secret (HS256).
func New(pool *pgxpool.Pool, secret string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{pool: pool, secret: []byte(secret), schema: "public", log: log, cache: map[string][]proc{}}
}

// WithSecretKey makes the server accept key, a secret API key
// (NewSecretKey), in the apikey header as the service_role, as Supabase's
// gateway does. Call it before serving.
func (s *Server) WithSecretKey(key string) *Server {
	s.secretKey = key
	return s
}

// NewSecretKey returns a random secret API key (sb_secret_…).
func NewSecretKey() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return supabase.SecretKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// SignJWT mints a token with the given role claim, as Supabase's anon and
// service-role keys are; ttl <= 0 means no expiry.
func SignJWT(secret, role string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{"role": role, "iss": "dueflow-local", "iat": now.Unix()}
	if ttl > 0 {
		claims["exp"] = now.Add(ttl).Unix()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

// apiError is PostgREST's error body.
type apiError struct {
	status  int
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Details *string `json:"details"`
	Hint    *string `json:"hint"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// gatewayError is the API gateway's own error body (not PostgREST's).
type gatewayError struct {
	status  int
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func writeGatewayError(w http.ResponseWriter, e *gatewayError) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(e)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(e)
}

// ServeHTTP handles POST /rest/v1/rpc/<fn>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || fn == "" || strings.Contains(fn, "/") {
		writeError(w, &apiError{status: 404, Code: "PGRST125", Message: "Invalid path specified in request URL"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, &apiError{status: 405, Code: "PGRST117", Message: "Unsupported HTTP method: " + r.Method})
		return
	}
	var claims jwt.MapClaims
	if r.Header.Get("Authorization") == "" && strings.HasPrefix(r.Header.Get("apikey"), "sb_") {
		var gerr *gatewayError
		if claims, gerr = s.apiKey(r); gerr != nil {
			writeGatewayError(w, gerr)
			return
		}
	} else {
		var aerr *apiError
		if claims, aerr = s.authenticate(r); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	role, _ := claims["role"].(string)
	if role == "" {
		role = "anon"
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(raw) > MaxBody {
		writeError(w, &apiError{status: 413, Code: "PGRST102", Message: "Request body too large or unreadable"})
		return
	}
	args := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil || args == nil {
			writeError(w, &apiError{status: 400, Code: "PGRST102", Message: "Empty or invalid json"})
			return
		}
	}
	status, body, aerr := s.call(r.Context(), role, claims, fn, args, raw)
	if aerr != nil {
		if aerr.status >= 500 {
			s.log.ErrorContext(r.Context(), "rpc failed", "function", fn, "role", role, "code", aerr.Code, "error", aerr.Message)
		}
		writeError(w, aerr)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// apiKey authenticates a request without Authorization by its apikey (an
// sb_ key), as the gateway does: the configured secret key is the
// service_role, except from a browser; any other key is refused.
func (s *Server) apiKey(r *http.Request) (jwt.MapClaims, *gatewayError) {
	key := r.Header.Get("apikey")
	if s.secretKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.secretKey)) != 1 {
		return nil, &gatewayError{status: http.StatusUnauthorized, Message: "Invalid API key", Hint: "Double check your Supabase `anon` or `service_role` API key."}
	}
	if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
		return nil, &gatewayError{status: http.StatusUnauthorized, Message: "Forbidden use of secret API key in browser"}
	}
	return jwt.MapClaims{"role": "service_role", "iss": "dueflow-local"}, nil
}

// authenticate verifies the JWT in Authorization: Bearer (an API key there
// is malformed, as for PostgREST behind the gateway).
func (s *Server) authenticate(r *http.Request) (jwt.MapClaims, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &apiError{status: 401, Code: "PGRST302", Message: "Anonymous access is disabled"}
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, &apiError{status: 401, Code: "PGRST301", Message: "Invalid authorization header"}
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(tok), claims, func(*jwt.Token) (any, error) { return s.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(30*time.Second))
	if err != nil {
		msg := "JWSError JWSInvalidSignature"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "JWT expired"
		} else if errors.Is(err, jwt.ErrTokenMalformed) {
			msg = "JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 1)"
		}
		return nil, &apiError{status: 401, Code: "PGRST301", Message: msg}
	}
	return claims, nil
}

// proc is one overload of a function, as far as a call needs it.
type proc struct {
	names    []string // input argument names, in order
	types    []string // their types (format_type)
	required int      // leading arguments without a default
	retset   bool
	scalar   bool // returns a base/domain/enum/pseudo type (not a row)
	void     bool
}

func (s *Server) overloads(ctx context.Context, fn string) ([]proc, error) {
	s.mu.Lock()
	ps, ok := s.cache[fn]
	s.mu.Unlock()
	if ok {
		return ps, nil
	}
	rows, err := s.pool.Query(ctx, `
select coalesce(p.proargnames, '{}'),
       coalesce(p.proargmodes::text[], '{}'),
       array(select format_type(t, null) from unnest(p.proargtypes) as t),
       p.pronargs, p.pronargdefaults, p.proretset,
       rt.typtype <> 'c' and rt.oid <> 'record'::regtype,
       rt.oid = 'void'::regtype
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'`, s.schema, fn)
	if err != nil {
		return nil, fmt.Errorf("schema cache: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var names, modes, types []string
		var nargs, ndefaults int
		var p proc
		if err := rows.Scan(&names, &modes, &types, &nargs, &ndefaults, &p.retset, &p.scalar, &p.void); err != nil {
			return nil, fmt.Errorf("schema cache: %w", err)
		}
		// proargnames covers every argument when modes are given; keep IN/INOUT ones.
		var in []string
		for i, n := range names {
			if len(modes) == 0 || modes[i] == "i" || modes[i] == "b" {
				in = append(in, n)
			}
		}
		if len(in) != len(types) || nargs != len(types) {
			continue // unnamed or variadic arguments: not callable by name
		}
		p.names, p.types, p.required = in, types, nargs-ndefaults
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schema cache: %w", err)
	}
	if len(ps) > 0 {
		s.mu.Lock()
		s.cache[fn] = ps
		s.mu.Unlock()
	}
	return ps, nil
}

// choose picks the overload whose argument names match the body's keys.
func choose(ps []proc, args map[string]json.RawMessage) (proc, bool) {
	for _, p := range ps {
		pos := map[string]int{}
		for i, n := range p.names {
			pos[n] = i
		}
		ok := true
		for k := range args {
			if _, found := pos[k]; !found {
				ok = false
				break
			}
		}
		for i := 0; ok && i < p.required; i++ {
			if _, given := args[p.names[i]]; !given {
				ok = false
			}
		}
		if ok {
			return p, true
		}
	}
	return proc{}, false
}

// Long: the PostgREST stand-in's one RPC path: headers, body, SQL call and error mapping as PostgREST answers
func (s *Server) call(ctx context.Context, role string, claims jwt.MapClaims, fn string, args map[string]json.RawMessage, raw []byte) (int, string, *apiError) {
	ps, err := s.overloads(ctx, fn)
	if err != nil {
		return 0, "", &apiError{status: 503, Code: "PGRST002", Message: err.Error()}
	}
	p, ok := choose(ps, args)
	if !ok {
		keys := make([]string, 0, len(args))
		for k := range args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		qualified := s.schema + "." + fn
		return 0, "", &apiError{status: 404, Code: "PGRST202",
			Message: fmt.Sprintf("Could not find the function %s(%s) in the schema cache", qualified, strings.Join(keys, ", ")),
			Details: strp(fmt.Sprintf("Searched for the function %s with parameters %s or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.", qualified, strings.Join(keys, ", ")))}
	}

	// Arguments are typed by Postgres itself, as PostgREST does: the body is
	// one json parameter read through json_to_record with the argument
	// types from pg_proc.
	var cols, named []string
	for i, n := range p.names {
		if _, given := args[n]; !given {
			continue
		}
		id := pgx.Identifier{n}.Sanitize()
		cols = append(cols, id+" "+p.types[i])
		named = append(named, id+" => _a."+id)
	}
	target := pgx.Identifier{s.schema, fn}.Sanitize() + "(" + strings.Join(named, ", ") + ")"
	from := target
	if len(cols) > 0 {
		from = "json_to_record($1::json) as _a(" + strings.Join(cols, ", ") + "), lateral " + target
	}
	var q string
	switch {
	case p.retset && p.scalar:
		q = "select coalesce(json_agg(_r._v), '[]'::json)::text from " + from + " as _r(_v)"
	case p.retset:
		q = "select coalesce(json_agg(_r), '[]'::json)::text from " + from + " as _r"
	case p.void:
		q = "select 'null' from " + from + " as _r"
	case p.scalar:
		q = "select coalesce(to_json(_r._v), 'null'::json)::text from " + from + " as _r(_v)"
	default:
		q = "select coalesce(to_json(_r), 'null'::json)::text from " + from + " as _r"
	}

	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return 0, "", &apiError{status: 500, Code: "PGRST000", Message: err.Error()}
	}
	// One transaction, as PostgREST runs every request, in one round trip:
	// the two statements go in one pipeline ending in a single Sync, which
	// makes them one implicit transaction (set_config(..., true) holds
	// until its end; an error rolls all of it back).
	var qargs []any
	if len(cols) > 0 {
		qargs = append(qargs, string(raw))
	}
	var b pgx.Batch
	// As PostgREST: set_config('role', ..., true) is SET LOCAL ROLE.
	b.Queue("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('request.jwt.claim.role', $1, true)",
		role, string(claimsJSON))
	b.Queue(q, qargs...)
	var out string
	br := s.pool.SendBatch(ctx, &b)
	_, roleErr := br.Exec()
	err = br.QueryRow().Scan(&out)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if roleErr != nil {
		e := pgError(roleErr, role)
		e.status = http.StatusUnauthorized // a token whose role does not exist
		return 0, "", e
	}
	if err != nil {
		return 0, "", pgError(err, role)
	}
	if p.void {
		return http.StatusNoContent, "", nil
	}
	return http.StatusOK, out, nil
}

// pgError maps a database error as PostgREST does.
func pgError(err error, role string) *apiError {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return &apiError{status: 503, Code: "PGRST000", Message: "Database client error: " + err.Error()}
	}
	e := &apiError{Code: pe.Code, Message: pe.Message, Details: strp(pe.Detail), Hint: strp(pe.Hint)}
	switch {
	case pe.Code == "42501":
		e.status = http.StatusForbidden
		if role == "anon" {
			e.status = http.StatusUnauthorized
		}
	case pe.Code == "42883", pe.Code == "42P01":
		e.status = http.StatusNotFound
	case pe.Code == "23505", pe.Code == "23503":
		e.status = http.StatusConflict
	case pe.Code == "P0001", pe.Code == "23502", pe.Code == "23514", strings.HasPrefix(pe.Code, "22"):
		e.status = http.StatusBadRequest
	case pe.Code == "42704": // set role to an unknown role
		e.status = http.StatusUnauthorized
	case pe.Code == "57014":
		e.status = http.StatusInternalServerError
	case pe.Code == "40001", pe.Code == "40P01":
		e.status = http.StatusServiceUnavailable
	default:
		e.status = http.StatusInternalServerError
	}
	return e
}
