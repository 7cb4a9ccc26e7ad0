package devstack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/providerevents"
	"github.com/dueflow/dueflow/shared/webhook"
)

var (
	echoBootstrap string
	riePath       string
)

func TestMain(m *testing.M) {
	code := func() int {
		root, err := FindRoot(".")
		if err != nil {
			panic(err)
		}
		if riePath, err = ToolPath(root, "aws-lambda-rie"); err != nil {
			panic(err)
		}
		dir, err := os.MkdirTemp("", "devstack-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		paths, err := BuildFunctions(context.Background(), root, dir, "./internal/devstack/testdata/echofn")
		if err != nil {
			panic(err)
		}
		echoBootstrap = paths["echofn"]
		return m.Run()
	}()
	pgtest.Shutdown()
	os.Exit(code)
}

func startEcho(t *testing.T, instances int) (*Function, *Gateway) {
	t.Helper()
	ctx := context.Background()
	f := NewFunction(FunctionSpec{Name: "echo", Bootstrap: echoBootstrap, Env: []string{"ECHO_ENV=hello"}, Instances: instances, TimeoutS: 5}, riePath, t.TempDir(), nil)
	require.NoError(t, f.Start(ctx))
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	g := NewGateway(nil)
	g.AddFunction(f)
	require.NoError(t, g.Start(0))
	t.Cleanup(func() { _ = g.Close() })
	return f, g
}

func TestGatewayFunctionURLRoundTrip(t *testing.T) {
	f, g := startEcho(t, 1)
	req, err := http.NewRequest(http.MethodPost, g.URL()+"/functions/v1/echo/sub/path?a=1&a=2&b=x", strings.NewReader(`{"k":"v"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Id", "msg_1")
	req.Header.Add("Cookie", "c1=a; c2=b")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "yes", resp.Header.Get("X-Echo"))
	var out struct {
		Event events.LambdaFunctionURLRequest `json:"event"`
		Env   string                          `json:"env"`
		Pid   int                             `json:"pid"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	ev := out.Event
	assert.Equal(t, "hello", out.Env, "function environment is passed through the emulator")
	assert.Equal(t, "2.0", ev.Version)
	assert.Equal(t, "/sub/path", ev.RawPath)
	assert.Equal(t, "a=1&a=2&b=x", ev.RawQueryString)
	assert.Equal(t, "1,2", ev.QueryStringParameters["a"])
	assert.Equal(t, "POST", ev.RequestContext.HTTP.Method)
	assert.Equal(t, "msg_1", ev.Headers["webhook-id"], "headers are lowercased")
	assert.Equal(t, "application/json", ev.Headers["content-type"])
	assert.NotContains(t, ev.Headers, "cookie")
	assert.Equal(t, []string{"c1=a", "c2=b"}, ev.Cookies)
	assert.Equal(t, `{"k":"v"}`, ev.Body)
	assert.False(t, ev.IsBase64Encoded)
	assert.Contains(t, f.Pids(), out.Pid, "the bootstrap runs as a descendant of the RIE")

	// a binary body arrives base64-encoded
	resp2, err := http.Post(g.URL()+"/functions/v1/echo", "application/octet-stream", strings.NewReader("\xff\xfe\x00"))
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&out))
	assert.True(t, out.Event.IsBase64Encoded)
	assert.Equal(t, "//4A", out.Event.Body)
	assert.Equal(t, "/", out.Event.RawPath)
}

func TestGatewayFunctionErrorsAndUnknown(t *testing.T) {
	_, g := startEcho(t, 1)
	resp, err := http.Post(g.URL()+"/functions/v1/echo/error", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode, "a handler error is a 502, like a Function URL")

	resp, err = http.Post(g.URL()+"/functions/v1/nope", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	resp, err = http.Post(g.URL()+"/functions/v1/echo", "application/json", strings.NewReader(strings.Repeat("x", maxFunctionURLPayload+1)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestFunctionPoolSerialisesPerInstanceAndSurvivesKill(t *testing.T) {
	f, g := startEcho(t, 2)
	// 6 concurrent slow calls on 2 instances: all succeed (queued, never 400 "already reserved")
	var wg sync.WaitGroup
	statuses := make([]int, 6)
	start := time.Now()
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(g.URL()+"/functions/v1/echo/sleep", "application/json", strings.NewReader(`{}`))
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}(i)
	}
	wg.Wait()
	for _, s := range statuses {
		assert.Equal(t, 201, s)
	}
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "3 rounds of 300 ms on 2 instances")

	pids := f.Pids()
	require.GreaterOrEqual(t, len(pids), 4, "two RIEs with a bootstrap each")
	started := startTimes(map[string][]int{"echo": pids})
	require.NoError(t, f.Kill(context.Background()))
	for pid, st := range started {
		assert.NotEqual(t, st, procStart(pid), "pid %d survived Kill", pid)
	}
	resp, err := http.Post(g.URL()+"/functions/v1/echo", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)

	require.NoError(t, f.Restart(context.Background()))
	resp, err = http.Post(g.URL()+"/functions/v1/echo", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 201, resp.StatusCode)
}

func TestTelnyxSink(t *testing.T) {
	s := NewTelnyxSink("KEY123")
	g := NewGateway(nil)
	g.SetTelnyx(s)
	require.NoError(t, g.Start(0))
	defer g.Close()
	post := func(auth, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, g.URL()+"/telnyx/v2/messages", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return resp.StatusCode, out
	}
	code, out := post("Bearer wrong", `{"from":"+15550001111","to":"+15550002222","text":"hi"}`)
	assert.Equal(t, 401, code)
	assert.Contains(t, out, "errors")
	code, _ = post("Bearer KEY123", `{"from":"+15550001111","to":"555","text":"hi"}`)
	assert.Equal(t, 422, code)
	s.FailNext(503)
	code, _ = post("Bearer KEY123", `{"from":"+15550001111","to":"+15550002222","text":"hi"}`)
	assert.Equal(t, 503, code)
	s.SetOutage(503)
	for range 2 {
		code, _ = post("Bearer KEY123", `{"from":"+15550001111","to":"+15550002222","text":"hi"}`)
		assert.Equal(t, 503, code, "an outage lasts until it is ended")
	}
	s.SetOutage(0)
	code, out = post("Bearer KEY123", `{"from":"+15550001111","to":"+15550002222","text":"hi"}`)
	require.Equal(t, 200, code)
	data := out["data"].(map[string]any)
	msgs := s.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, msgs[0].ID, data["id"])
	assert.Equal(t, "+15550002222", msgs[0].To)
	assert.Equal(t, "hi", msgs[0].Text)
}

func TestNetWorkerSendsRecordsAndNeverRetries(t *testing.T) {
	pool, dsn := pgtest.NewDB(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("X-Sig")+" "+string(b))
		mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		case "/fail":
			w.WriteHeader(503)
			_, _ = w.Write([]byte("down"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	ln, err := listen(0)
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	w, err := StartNetWorker(ctx, NetWorkerConfig{DSN: dsn, PollInterval: time.Hour})
	require.NoError(t, err)
	defer w.Close()

	var okID, slowID, failID, deadID int64
	require.NoError(t, pool.QueryRow(ctx, `select net.http_post($1, '{"a": 1}'::jsonb, '{}'::jsonb, '{"X-Sig":"s1","Content-Type":"application/json"}'::jsonb)`, base+"/ok").Scan(&okID))
	require.NoError(t, pool.QueryRow(ctx, `select net.http_post($1, '{}'::jsonb, timeout_milliseconds => 200)`, base+"/slow").Scan(&slowID))
	require.NoError(t, pool.QueryRow(ctx, `select net.http_post($1)`, base+"/fail").Scan(&failID))
	require.NoError(t, pool.QueryRow(ctx, `select net.http_post('http://127.0.0.1:1/closed')`).Scan(&deadID))

	// woken by the notification at commit: no poll for an hour
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, w.Drain(dctx))

	type row struct {
		status   *int
		content  *string
		ctype    *string
		timedOut bool
		errMsg   *string
	}
	read := func(id int64) row {
		var r row
		require.NoError(t, pool.QueryRow(ctx, `select status_code, content, content_type, timed_out, error_msg from net._http_response where id = $1`, id).
			Scan(&r.status, &r.content, &r.ctype, &r.timedOut, &r.errMsg))
		return r
	}
	ok := read(okID)
	require.NotNil(t, ok.status)
	assert.Equal(t, 200, *ok.status)
	assert.Equal(t, `{"ok":true}`, *ok.content)
	assert.Equal(t, "application/json", *ok.ctype)
	slow := read(slowID)
	assert.Nil(t, slow.status)
	assert.True(t, slow.timedOut)
	fail := read(failID)
	assert.Equal(t, 503, *fail.status)
	assert.Equal(t, "down", *fail.content)
	dead := read(deadID)
	assert.Nil(t, dead.status)
	require.NotNil(t, dead.errMsg)
	assert.NotEmpty(t, *dead.errMsg)

	var queued int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from net.http_request_queue`).Scan(&queued))
	assert.Zero(t, queued)
	time.Sleep(1600 * time.Millisecond) // let the slow handler finish
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, got, 3, "each request sent exactly once, failures not retried")
	assert.Contains(t, got, `/ok s1 {"a": 1}`)
}

func TestParseEmailMultipart(t *testing.T) {
	raw := "From: \"Acme Co\" <billing@acme.test>\r\nTo: jane@example.test\r\nSubject: =?UTF-8?q?Invoice_#12_=E2=80=93_due?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello Jane, =E2=82=AC12.00\r\n" +
		"--XX\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+SGVsbG8gSmFuZTwvcD4=\r\n--XX--\r\n"
	e, err := ParseEmail([]byte(raw))
	require.NoError(t, err)
	assert.Equal(t, "Invoice #12 – due", e.Subject)
	assert.Equal(t, "billing@acme.test", e.From)
	assert.Equal(t, "Acme Co", e.FromName)
	assert.Equal(t, []string{"jane@example.test"}, e.To)
	assert.Equal(t, "Hello Jane, €12.00", e.Text)
	assert.Equal(t, "<p>Hello Jane</p>", e.HTML)
}

// TestFunctionCallerTimeoutKeepsInstanceBusy: a caller that gives up does
// not free the instance while the invocation still runs (as on Lambda), so
// the next call waits for it instead of colliding with it in the emulator.
func TestFunctionCallerTimeoutKeepsInstanceBusy(t *testing.T) {
	f, _ := startEcho(t, 1)
	ev := []byte(`{"version":"2.0","rawPath":"/sleep","requestContext":{"http":{"method":"POST"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := f.Invoke(ctx, ev)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	start := time.Now()
	body, fnErr, err := f.Invoke(context.Background(), []byte(`{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}}}`))
	require.NoError(t, err)
	assert.False(t, fnErr, string(body))
	assert.Contains(t, string(body), `"statusCode":201`)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "waited for the abandoned invocation to finish")
}

// The environment the stack gives its functions passes shared/config's
// checks with either kind of Supabase key: what the demo runs with must
// stay accepted.
func TestFunctionEnvironmentLoads(t *testing.T) {
	g := NewGateway(nil)
	require.NoError(t, g.Start(0))
	defer g.Close()
	pe, err := g.ServeAtRoot(ProviderEventsFunction, 0)
	require.NoError(t, err)
	capture, err := StartSMTPCapture(0)
	require.NoError(t, err)
	defer func() { _ = capture.Close(context.Background()) }()
	for _, useSecretKey := range []bool{false, true} {
		s := &Stack{cfg: Config{SMSProvider: "telnyx", UseSecretKey: useSecretKey}, gateway: g, capture: capture, whsec: webhook.NewSecret(), peURL: pe}
		require.NoError(t, s.makeKeys())
		s.telnyx = NewTelnyxSink(s.smsKey)
		env := map[string]string{config.EnvAction: "send-reminder"}
		for _, kv := range s.FunctionEnvironment() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err, "UseSecretKey %v", useSecretKey)
		want := s.ServiceRoleKey()
		if useSecretKey {
			want = s.SecretKey()
			assert.NotContains(t, env, config.EnvServiceRoleKey)
		}
		assert.Equal(t, want, cfg.ServiceRoleKey.Value())
		// the action functions link to provider-events at its Function URL's root
		assert.Equal(t, pe, cfg.PublicURL)
		u, err := url.Parse(cfg.PublicURL)
		require.NoError(t, err)
		assert.Empty(t, u.Path, "a Function URL's root")
		ev, err := config.LoadEvents(func(k string) string { return env[k] })
		require.NoError(t, err, "provider-events")
		assert.Equal(t, s.telnyx.PublicKey(), ev.TelnyxPublicKey)
		assert.Equal(t, [][]byte{s.UnsubscribeKey()}, ev.UnsubscribeKeys)
	}
}

type eventsRecorder struct {
	mu     sync.Mutex
	events []providerevents.Event
}

func (r *eventsRecorder) RecordProviderEvents(_ context.Context, ev []providerevents.Event) (providerevents.Recorded, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev...)
	return providerevents.Recorded{Recorded: len(ev)}, nil
}

// The SMS sink plays Telnyx's side: its signed webhooks verify with its
// public key in provider-events' handler, and a copy signed by another
// key does not.
func TestTelnyxSinkWebhooksVerify(t *testing.T) {
	sink := NewTelnyxSink("KEY0")
	store := &eventsRecorder{}
	h, err := providerevents.New(providerevents.Options{Store: store, TelnyxPublicKey: sink.PublicKey()})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	sink.SetWebhookURL(srv.URL + providerevents.PathTelnyx)
	ctx := context.Background()
	status, err := sink.PostInbound(ctx, "+14155550123", "+15005550006", "Stop")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	m := SMS{ID: "4031938e-60a7-4c35-a1b5-4b1f8b3b8bbb", From: "+15005550006", To: "+14155550123"}
	status, err = sink.PostDeliveryReport(ctx, m, "delivery_failed", "40001")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	require.Len(t, store.events, 2)
	assert.Equal(t, providerevents.KindOptOut, store.events[0].Kind)
	assert.Equal(t, "+14155550123", store.events[0].Address)
	assert.Equal(t, "+15005550006", store.events[0].Sender)
	assert.Equal(t, providerevents.StatusBounced, store.events[1].Status, "40001 (not routable) is the SMS's hard bounce")
	assert.True(t, store.events[1].Permanent)
	assert.Equal(t, m.ID, store.events[1].ProviderMessageID)

	other := NewTelnyxSink("KEY0")
	other.SetWebhookURL(srv.URL + providerevents.PathTelnyx)
	status, err = other.PostInbound(ctx, "+14155550123", "+15005550006", "STOP")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Len(t, store.events, 2)
}
