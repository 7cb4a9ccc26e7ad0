package console_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestCheckBind(t *testing.T) {
	assert.NoError(t, console.CheckBind("127.0.0.1:54323", ""))
	assert.NoError(t, console.CheckBind("[::1]:54323", ""))
	assert.NoError(t, console.CheckBind("localhost:54323", ""))
	assert.ErrorContains(t, console.CheckBind("0.0.0.0:54323", ""), "token")
	assert.ErrorContains(t, console.CheckBind(":54323", ""), "token")
	assert.ErrorContains(t, console.CheckBind("10.0.0.5:80", ""), "token")
	assert.NoError(t, console.CheckBind("0.0.0.0:54323", "s3cret"))
}

// client is a browser-like client: cookies kept, redirects not followed.
func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

var formToken = regexp.MustCompile(`name="form_token" value="([0-9a-f]+)"`)

// Read-only unless actions are on; with a token every page asks for a
// login; a POST needs the page's form token; actions are recorded with the
// logged-in name.
func TestAccessRules(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	_, _, execs := pgtest.OverdueInvoices(t, db, 1)
	exec := execs[0].String()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))

	// read-only, no login (loopback)
	ro, err := console.New(console.Config{DB: db, Logger: logger, Actor: "os-user"})
	require.NoError(t, err)
	srv := httptest.NewServer(ro)
	defer srv.Close()
	c := client()
	code, body, h := get(t, c, srv.URL+"/executions/"+exec)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, `id="cancel"`, "no action buttons when read-only")
	assert.Contains(t, h.Get("Content-Security-Policy"), "script-src 'none'")
	resp, err := c.PostForm(srv.URL+"/executions/"+exec+"/cancel", url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, exec))

	// DNS rebinding: another site's name resolved to 127.0.0.1 reaches the
	// tokenless console with its own Host, and is refused
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/executions/"+exec, nil)
	require.NoError(t, err)
	req.Host = "rebound.example:80"
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode)

	// actions and a token
	rw, err := console.New(console.Config{DB: db, Logger: logger, Token: "tok-123", Actions: true})
	require.NoError(t, err)
	srv2 := httptest.NewServer(rw)
	defer srv2.Close()
	c = client()
	code, _, h = get(t, c, srv2.URL+"/executions")
	assert.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/login", h.Get("Location"))
	resp, err = c.PostForm(srv2.URL+"/login", url.Values{"name": {"dana"}, "token": {"wrong"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, err = c.PostForm(srv2.URL+"/login", url.Values{"name": {"dana"}, "token": {"tok-123"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	code, body, _ = get(t, c, srv2.URL+"/executions/"+exec)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="cancel"`)

	// a forged POST (no form token) is refused
	resp, err = c.PostForm(srv2.URL+"/executions/"+exec+"/cancel", url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "pending", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, exec))

	m := formToken.FindStringSubmatch(body)
	require.NotNil(t, m)
	resp, err = c.PostForm(srv2.URL+"/executions/"+exec+"/cancel", url.Values{"form_token": {m[1]}, "reason": {"wrong client"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/executions/"+exec+"?flash="))
	assert.Equal(t, "cancelled", pgtest.Text(t, db, `select status from automation_execution_logs where id = $1`, exec))
	assert.Equal(t, "dana cancel true", pgtest.Text(t, db, `select actor || ' ' || action || ' ' || applied from automation_operator_actions`))

	// every page renders
	for _, p := range []string{"/executions?state=cancelled", "/workflows", "/cron", "/analytics"} {
		code, body, _ := get(t, c, srv2.URL+p)
		assert.Equal(t, http.StatusOK, code, p+": "+body)
	}
	code, _, _ = get(t, c, srv2.URL+"/outbox")
	assert.Equal(t, http.StatusNotFound, code, "no outbox outside the local stack")
	code, body, _ = get(t, c, srv2.URL+"/executions?org=nope")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "org: not a uuid")
}
