package postgrest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/supabase"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "super-secret-jwt-token-with-at-least-32-characters"

const fixtures = `
create table public.t_items (id int primary key, name text not null);
alter table public.t_items enable row level security;

create function public.t_add(p_a int, p_b int default 1) returns int
  language sql as $$ select p_a + p_b $$;
create function public.t_ids(p_ids uuid[], p_tag text default 'x') returns setof jsonb
  language sql as $$ select jsonb_build_object('id', i, 'tag', p_tag) from unnest(p_ids) as i $$;
create function public.t_rows() returns table(a int, b text)
  language sql as $$ values (1, 'one'), (2, 'two') $$;
create function public.t_echo(p_doc jsonb) returns jsonb
  language sql as $$ select p_doc $$;
create function public.t_whoami() returns jsonb
  language sql as $$ select jsonb_build_object('user', current_user, 'claims', current_setting('request.jwt.claims', true)::jsonb) $$;
create function public.t_raise() returns void
  language plpgsql as $$ begin raise exception 'bad outcome' using detail = 'the detail', hint = 'the hint'; end $$;
create function public.t_noop() returns void language sql as $$ select $$;
create function public.t_insert(p_id int) returns int
  language sql security definer set search_path = public as $$ insert into public.t_items values (p_id, 'n') returning id $$;
create function public.t_insert_raise(p_id int) returns int
  language plpgsql security definer set search_path = public as $$
  begin insert into public.t_items values (p_id, 'n'); raise exception 'after the insert'; end $$;

revoke execute on function public.t_add(int, int), public.t_ids(uuid[], text), public.t_whoami(), public.t_insert(int),
  public.t_insert_raise(int) from public, anon, authenticated;
grant execute on function public.t_add(int, int), public.t_ids(uuid[], text), public.t_whoami(), public.t_insert(int),
  public.t_insert_raise(int) to service_role;
`

type fixture struct {
	srv       *httptest.Server
	secretKey string // the sb_secret_ key the server accepts
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	return newFixtureOn(t, pool)
}

// newFixtureOn serves the fixtures' functions from pool.
func newFixtureOn(t *testing.T, pool *pgxpool.Pool) *fixture {
	t.Helper()
	_, err := pool.Exec(context.Background(), fixtures)
	require.NoError(t, err)
	key := NewSecretKey()
	srv := httptest.NewServer(New(pool, secret, nil).WithSecretKey(key))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, secretKey: key}
}

// postHeaders posts body to fn with exactly the given headers and returns
// the status and the decoded body.
func (f *fixture) postHeaders(t *testing.T, fn string, hdr map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+PathPrefix+fn, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func token(t *testing.T, role string) string {
	t.Helper()
	tok, err := SignJWT(secret, role, time.Hour)
	require.NoError(t, err)
	return tok
}

type answer struct {
	status int
	body   string
	err    map[string]any
}

func (f *fixture) post(t *testing.T, fn, tok, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+PathPrefix+fn, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b)}
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(b, &a.err), string(b))
		for _, k := range []string{"code", "message", "details", "hint"} {
			assert.Contains(t, a.err, k, "PostgREST error objects always carry %s", k)
		}
	}
	return a
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	a := f.post(t, "t_add", "", `{"p_a":1}`)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "PGRST302", a.err["code"])

	a = f.post(t, "t_add", "not-a-jwt", `{"p_a":1}`)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "PGRST301", a.err["code"])

	forged, err := SignJWT("another-secret-another-secret-another", "service_role", time.Hour)
	require.NoError(t, err)
	a = f.post(t, "t_add", forged, `{"p_a":1}`)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "PGRST301", a.err["code"])

	expired := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "service_role", "exp": time.Now().Add(-time.Hour).Unix()})
	s, err := expired.SignedString([]byte(secret))
	require.NoError(t, err)
	a = f.post(t, "t_add", s, `{"p_a":1}`)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "JWT expired", a.err["message"])

	hs384, err := jwt.NewWithClaims(jwt.SigningMethodHS384, jwt.MapClaims{"role": "service_role"}).SignedString([]byte(secret))
	require.NoError(t, err)
	assert.Equal(t, 401, f.post(t, "t_add", hs384, `{"p_a":1}`).status)
}

func TestRoles(t *testing.T) {
	f := newFixture(t)
	a := f.post(t, "t_add", token(t, "anon"), `{"p_a":1}`)
	assert.Equal(t, 401, a.status, a.body)
	assert.Equal(t, "42501", a.err["code"])
	assert.Contains(t, a.err["message"], "permission denied")

	a = f.post(t, "t_add", token(t, "authenticated"), `{"p_a":1}`)
	assert.Equal(t, 403, a.status, a.body)
	assert.Equal(t, "42501", a.err["code"])

	a = f.post(t, "t_whoami", token(t, "no_such_role"), ``)
	assert.Equal(t, 401, a.status, a.body)

	a = f.post(t, "t_whoami", token(t, "service_role"), ``)
	require.Equal(t, 200, a.status, a.body)
	var who struct {
		User   string         `json:"user"`
		Claims map[string]any `json:"claims"`
	}
	require.NoError(t, json.Unmarshal([]byte(a.body), &who))
	assert.Equal(t, "service_role", who.User)
	assert.Equal(t, "service_role", who.Claims["role"])
}

func TestResultShapes(t *testing.T) {
	f := newFixture(t)
	svc := token(t, "service_role")

	a := f.post(t, "t_add", svc, `{"p_a":41}`) // default used
	assert.Equal(t, 200, a.status)
	assert.JSONEq(t, `42`, a.body)
	assert.JSONEq(t, `5`, f.post(t, "t_add", svc, `{"p_a":2,"p_b":3}`).body)

	id1, id2 := uuid.New(), uuid.New()
	a = f.post(t, "t_ids", svc, `{"p_ids":["`+id1.String()+`","`+id2.String()+`"],"p_tag":"t"}`)
	require.Equal(t, 200, a.status, a.body)
	assert.JSONEq(t, `[{"id":"`+id1.String()+`","tag":"t"},{"id":"`+id2.String()+`","tag":"t"}]`, a.body)
	assert.JSONEq(t, `[]`, f.post(t, "t_ids", svc, `{"p_ids":[]}`).body)
	assert.JSONEq(t, `[]`, f.post(t, "t_ids", svc, `{"p_ids":null}`).body)

	assert.JSONEq(t, `[{"a":1,"b":"one"},{"a":2,"b":"two"}]`, f.post(t, "t_rows", svc, `{}`).body)
	assert.JSONEq(t, `{"x":[1,{"y":"z"}],"s":"it's"}`, f.post(t, "t_echo", svc, `{"p_doc":{"x":[1,{"y":"z"}],"s":"it's"}}`).body)
	assert.JSONEq(t, `null`, f.post(t, "t_echo", svc, `{"p_doc":null}`).body)

	a = f.post(t, "t_noop", svc, `{}`)
	assert.Equal(t, 204, a.status)
	assert.Empty(t, a.body)
}

func TestErrorMapping(t *testing.T) {
	f := newFixture(t)
	svc := token(t, "service_role")

	a := f.post(t, "t_missing", svc, `{"p_a":1}`)
	assert.Equal(t, 404, a.status)
	assert.Equal(t, "PGRST202", a.err["code"])
	assert.Contains(t, a.err["message"], "public.t_missing(p_a)")

	a = f.post(t, "t_add", svc, `{"p_a":1,"p_zzz":2}`) // unknown argument
	assert.Equal(t, 404, a.status)
	assert.Equal(t, "PGRST202", a.err["code"])
	assert.Equal(t, 404, f.post(t, "t_add", svc, `{}`).status) // required argument missing

	a = f.post(t, "t_raise", svc, `{}`)
	assert.Equal(t, 400, a.status)
	assert.Equal(t, map[string]any{"code": "P0001", "message": "bad outcome", "details": "the detail", "hint": "the hint"}, a.err)

	a = f.post(t, "t_ids", svc, `{"p_ids":["nope"]}`)
	assert.Equal(t, 400, a.status)
	assert.Equal(t, "22P02", a.err["code"])

	assert.Equal(t, 200, f.post(t, "t_insert", svc, `{"p_id":1}`).status)
	a = f.post(t, "t_insert", svc, `{"p_id":1}`)
	assert.Equal(t, 409, a.status)
	assert.Equal(t, "23505", a.err["code"])
	assert.Nil(t, a.err["hint"])

	a = f.post(t, "t_add", svc, `[1,2]`)
	assert.Equal(t, 400, a.status)
	assert.Equal(t, "PGRST102", a.err["code"])
}

// Every call is one transaction, as in PostgREST: the role and claims it
// sets end with it (the next call on the same connection does not inherit
// them), and a call that fails leaves nothing of what it wrote.
func TestCallIsOneTransaction(t *testing.T) {
	pool, _ := pgtest.NewDB(t)
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1 // every call on the same connection
	one, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(one.Close)
	f := newFixtureOn(t, one)
	svc := token(t, "service_role")

	a := f.post(t, "t_whoami", svc, ``)
	require.Equal(t, 200, a.status, a.body)
	assert.Contains(t, a.body, `"user": "service_role"`)
	a = f.post(t, "t_add", token(t, "authenticated"), `{"p_a":1}`)
	assert.Equal(t, 403, a.status, "the service_role of the call before must not carry over: %s", a.body)
	a = f.post(t, "t_whoami", token(t, "authenticated"), ``)
	assert.Contains(t, a.body, `"user": "authenticated"`)
	assert.Contains(t, a.body, `"role": "authenticated"`)
	var user, claims string
	require.NoError(t, one.QueryRow(context.Background(),
		`select current_user::text, coalesce(current_setting('request.jwt.claims', true), '')`).Scan(&user, &claims))
	assert.NotEqual(t, "service_role", user)
	assert.Empty(t, claims)

	a = f.post(t, "t_insert_raise", svc, `{"p_id":7}`)
	assert.Equal(t, 400, a.status, a.body)
	var n int
	require.NoError(t, one.QueryRow(context.Background(), `select count(*) from public.t_items where id = 7`).Scan(&n))
	assert.Zero(t, n, "the failed call's insert is rolled back")
	assert.Equal(t, 200, f.post(t, "t_insert", svc, `{"p_id":7}`).status)
	require.NoError(t, one.QueryRow(context.Background(), `select count(*) from public.t_items where id = 7`).Scan(&n))
	assert.Equal(t, 1, n, "a call that succeeds commits")

	a = f.post(t, "t_whoami", token(t, "no_such_role"), ``)
	assert.Equal(t, 401, a.status, "an unknown role: %s", a.body)
	assert.Equal(t, 200, f.post(t, "t_whoami", svc, ``).status, "the connection is usable after a failed role")
}

// The adapter and the stand-in agree on the wire format.
func TestAdapterAgainstStandIn(t *testing.T) {
	f := newFixture(t)
	c, err := supabase.New(supabase.Config{URL: f.srv.URL, Key: token(t, "service_role"), Timeout: 5 * time.Second})
	require.NoError(t, err)
	var sum int
	require.NoError(t, c.Call(context.Background(), "t_add", map[string]int{"p_a": 1, "p_b": 2}, &sum))
	assert.Equal(t, 3, sum)

	err = c.Call(context.Background(), "t_raise", map[string]any{}, nil)
	var re *supabase.RPCError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 400, re.Status)
	assert.Equal(t, "P0001", re.Code)
	assert.Equal(t, "the hint", re.Hint)

	err = c.Call(context.Background(), "automation_nothing", map[string]any{}, nil)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "PGRST202", re.Code)

	anon, err := supabase.New(supabase.Config{URL: f.srv.URL, Key: token(t, "anon")})
	require.NoError(t, err)
	err = anon.Call(context.Background(), "t_add", map[string]int{"p_a": 1}, &sum)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 401, re.Status)
	assert.Equal(t, "42501", re.Code)
}

// The gateway's rules for secret API keys: apikey alone is the
// service_role; in Authorization it is no JWT; another key, or the key from
// a browser, is refused; JWTs keep working beside it.
func TestSecretKey(t *testing.T) {
	f := newFixture(t)
	status, who := f.postHeaders(t, "t_whoami", map[string]string{"apikey": f.secretKey}, ``)
	require.Equal(t, 200, status, who)
	assert.Equal(t, "service_role", who["user"])
	assert.Equal(t, "service_role", who["claims"].(map[string]any)["role"])

	status, body := f.postHeaders(t, "t_whoami", map[string]string{"apikey": f.secretKey, "Authorization": "Bearer " + f.secretKey}, ``)
	assert.Equal(t, 401, status)
	assert.Equal(t, "PGRST301", body["code"], "a secret key in Authorization is not a JWT")

	status, body = f.postHeaders(t, "t_whoami", map[string]string{"apikey": NewSecretKey()}, ``)
	assert.Equal(t, 401, status)
	assert.Equal(t, "Invalid API key", body["message"])

	status, body = f.postHeaders(t, "t_whoami", map[string]string{"apikey": f.secretKey,
		"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"}, ``)
	assert.Equal(t, 401, status)
	assert.Equal(t, "Forbidden use of secret API key in browser", body["message"])

	status, who = f.postHeaders(t, "t_whoami", map[string]string{"apikey": f.secretKey, "Authorization": "Bearer " + token(t, "service_role")}, ``)
	require.Equal(t, 200, status, who)
	assert.Equal(t, "service_role", who["user"], "a JWT in Authorization decides, as before")

	// a server configured without a secret key knows none
	pool, _ := pgtest.NewDB(t)
	plain := httptest.NewServer(New(pool, secret, nil))
	defer plain.Close()
	g := &fixture{srv: plain}
	status, body = g.postHeaders(t, "t_add", map[string]string{"apikey": f.secretKey}, `{"p_a":1}`)
	assert.Equal(t, 401, status)
	assert.Equal(t, "Invalid API key", body["message"])
}

// The adapter sends each kind of key where the gateway wants it.
func TestAdapterWithEitherKey(t *testing.T) {
	f := newFixture(t)
	for name, key := range map[string]string{"secret key": f.secretKey, "service_role JWT": token(t, "service_role")} {
		t.Run(name, func(t *testing.T) {
			c, err := supabase.New(supabase.Config{URL: f.srv.URL, Key: key, Timeout: 5 * time.Second})
			require.NoError(t, err)
			var sum int
			require.NoError(t, c.Call(context.Background(), "t_add", map[string]int{"p_a": 1, "p_b": 2}, &sum))
			assert.Equal(t, 3, sum)
		})
	}
	wrong, err := supabase.New(supabase.Config{URL: f.srv.URL, Key: NewSecretKey(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	err = wrong.Call(context.Background(), "t_add", map[string]int{"p_a": 1}, nil)
	var re *supabase.RPCError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 401, re.Status)
	assert.Contains(t, re.Error(), "Invalid API key")
}
