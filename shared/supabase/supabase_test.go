package supabase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	postgrest "github.com/supabase-community/postgrest-go"
	supabasego "github.com/supabase-community/supabase-go"

	"github.com/dueflow/dueflow/shared/automation"
)

// rpcServer answers POST /rest/v1/rpc/<fn> with the handler registered for fn.
func rpcServer(t *testing.T, h map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for fn, f := range h {
		mux.HandleFunc("POST /rest/v1/rpc/"+fn, f)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, url string, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(Config{URL: url, Key: "service-key", Timeout: timeout})
	require.NoError(t, err)
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func TestClaimDecodesSetofArrayAndSendsNamedArgs(t *testing.T) {
	execID, token := uuid.New(), uuid.New()
	var got map[string]any
	var hdr http.Header
	srv := rpcServer(t, map[string]http.HandlerFunc{FnClaim: func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		writeJSON(w, 200, fmt.Sprintf(`[{"execution":{"id":%q,"lease_token":%q,"attempt":1,"action":"invoice-reminder","lease_expires_at":"2026-11-29T10:00:00Z"},
			"workflow":{"is_active":true,"steps":[{"type":"send_email"}]},"organization":{"name":"Acme"},"client":null,"invoice":{"number":"INV-1","balance":"10.00"},"job":null,"deliveries":[]}]`, execID, token))
	}})
	c := newClient(t, srv.URL, time.Second)
	ids := []uuid.UUID{execID}
	out, err := c.Claim(context.Background(), automation.ClaimRequest{Action: "invoice-reminder", IDs: ids, Limit: 1, LeaseSeconds: 300})
	require.NoError(t, err)
	require.Len(t, out, 1)
	var doc automation.Claimed
	require.NoError(t, json.Unmarshal(out[0], &doc))
	assert.Equal(t, execID, doc.Execution.ID)
	assert.Equal(t, token, doc.Execution.LeaseToken)
	assert.Nil(t, doc.Client)
	assert.Equal(t, "INV-1", doc.Invoice.Number)

	assert.Equal(t, "invoice-reminder", got["p_action"])
	assert.Equal(t, []any{execID.String()}, got["p_ids"])
	assert.EqualValues(t, 1, got["p_limit"])
	assert.EqualValues(t, 300, got["p_lease_seconds"])
	assert.Equal(t, "Bearer service-key", hdr.Get("Authorization"))
	assert.Equal(t, "service-key", hdr.Get("apikey"))
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	assert.Equal(t, UserAgent, hdr.Get("User-Agent"))
}

// A secret key goes in apikey only (Supabase's gateway refuses it in
// Authorization); a legacy JWT in both. Neither User-Agent looks like a
// browser's (secret keys are refused from browsers).
func TestKeyHeaders(t *testing.T) {
	var got []http.Header
	srv := rpcServer(t, map[string]http.HandlerFunc{FnReport: func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Clone())
		writeJSON(w, 200, `[]`)
	}})
	const secretKey = "sb_secret_N7xQ2pLk9vR4sT8wY1zA3bC5dE"
	const legacy = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln"
	for _, key := range []string{secretKey, legacy} {
		c, err := New(Config{URL: srv.URL, Key: key, Timeout: time.Second})
		require.NoError(t, err)
		_, err = c.Report(context.Background(), nil)
		require.NoError(t, err)
	}
	require.Len(t, got, 2)
	assert.Equal(t, secretKey, got[0].Get("apikey"))
	assert.Empty(t, got[0].Values("Authorization"), "no Authorization header with a secret key")
	assert.Equal(t, legacy, got[1].Get("apikey"))
	assert.Equal(t, "Bearer "+legacy, got[1].Get("Authorization"))
	for _, h := range got {
		assert.Regexp(t, `^dueflow/\S+$`, h.Get("User-Agent"))
	}
}

// One document of a wrong shape does not make the answer undecodable: each
// comes back as it is, for the engine to decode alone.
func TestClaimReturnsEachDocumentUndecoded(t *testing.T) {
	srv := rpcServer(t, map[string]http.HandlerFunc{FnClaim: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `[{"execution":{"id":"00000000-0000-0000-0000-000000000001"},"workflow":{"steps":[{"type":"delay","days":"1"}]}},
			{"execution":{"id":"00000000-0000-0000-0000-000000000002"},"workflow":{"steps":[]}}]`)
	}})
	out, err := newClient(t, srv.URL, time.Second).Claim(context.Background(), automation.ClaimRequest{Action: "send-reminder", Limit: 10})
	require.NoError(t, err)
	require.Len(t, out, 2)
	var doc automation.Claimed
	require.Error(t, json.Unmarshal(out[0], &doc))
	require.NoError(t, json.Unmarshal(out[1], &doc))
	assert.Equal(t, "00000000-0000-0000-0000-000000000002", doc.Execution.ID.String())
}

func TestClaimEmptyArrayIsNoError(t *testing.T) {
	srv := rpcServer(t, map[string]http.HandlerFunc{FnClaim: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `[]`)
	}})
	out, err := newClient(t, srv.URL, time.Second).Claim(context.Background(), automation.ClaimRequest{Action: "send-reminder", Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, out)
}

func TestRecordAndReportDecodeScalarJSONB(t *testing.T) {
	var gotRecord, gotReport map[string]json.RawMessage
	srv := rpcServer(t, map[string]http.HandlerFunc{
		FnRecordDeliveries: func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, json.NewDecoder(r.Body).Decode(&gotRecord))
			writeJSON(w, 200, `[{"idempotency_key":"k1","state":"new"},{"idempotency_key":"k2","state":"ambiguous"}]`)
		},
		FnReport: func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, json.NewDecoder(r.Body).Decode(&gotReport))
			writeJSON(w, 200, `[{"execution_id":"00000000-0000-0000-0000-000000000001","applied":false,"status":"pending","reason":"stale_lease"}]`)
		},
	})
	c := newClient(t, srv.URL, time.Second)
	exec, lease := uuid.New(), uuid.New()
	finished := []automation.DeliveryFinished{{ExecutionID: exec, LeaseToken: lease,
		DeliveryResult: automation.DeliveryResult{IdempotencyKey: "k0", Status: automation.DeliverySent, ProviderMessageID: "m-0"}}}
	begun, err := c.RecordDeliveries(context.Background(), finished, []automation.DeliveryIntent{{IdempotencyKey: "k1"}, {IdempotencyKey: "k2"}})
	require.NoError(t, err)
	assert.Equal(t, []automation.DeliveryBegun{{IdempotencyKey: "k1", State: "new"}, {IdempotencyKey: "k2", State: "ambiguous"}}, begun)
	assert.JSONEq(t, fmt.Sprintf(`[{"execution_id":%q,"lease_token":%q,"idempotency_key":"k0","status":"sent","provider_message_id":"m-0"}]`, exec, lease),
		string(gotRecord["p_finished"]), "one flat object per delivery, as the SQL reads it")
	assert.Len(t, gotRecord, 2)
	assert.Contains(t, gotRecord, "p_begin")

	// nothing finished yet: an empty array, never null
	_, err = c.RecordDeliveries(context.Background(), nil, []automation.DeliveryIntent{{IdempotencyKey: "k1"}, {IdempotencyKey: "k2"}})
	require.NoError(t, err)
	assert.JSONEq(t, `[]`, string(gotRecord["p_finished"]))

	rep, err := c.Report(context.Background(), []automation.Outcome{{Status: automation.OutcomeCompleted}})
	require.NoError(t, err)
	require.Len(t, rep, 1)
	assert.False(t, rep[0].Applied)
	assert.Equal(t, "stale_lease", rep[0].Reason)
	assert.Contains(t, gotReport, "p_outcomes")
}

// A database whose migrations predate automation_record_deliveries answers
// PGRST202: the chunk is begun through automation_begin_deliveries (the
// report finishes what was to be finished). Any other error is not retried.
func TestRecordFallsBackToBeginWithoutTheFunction(t *testing.T) {
	var calls []string
	var gotBegin map[string]json.RawMessage
	srv := rpcServer(t, map[string]http.HandlerFunc{
		FnRecordDeliveries: func(w http.ResponseWriter, r *http.Request) {
			calls = append(calls, FnRecordDeliveries)
			writeJSON(w, 404, `{"code":"PGRST202","message":"Could not find the function public.automation_record_deliveries(p_begin, p_finished) in the schema cache","details":null,"hint":null}`)
		},
		FnBeginDeliveries: func(w http.ResponseWriter, r *http.Request) {
			calls = append(calls, FnBeginDeliveries)
			require.NoError(t, json.NewDecoder(r.Body).Decode(&gotBegin))
			writeJSON(w, 200, `[{"idempotency_key":"k1","state":"new"}]`)
		},
	})
	c := newClient(t, srv.URL, time.Second)
	begun, err := c.RecordDeliveries(context.Background(), []automation.DeliveryFinished{{DeliveryResult: automation.DeliveryResult{IdempotencyKey: "k0", Status: "sent"}}},
		[]automation.DeliveryIntent{{IdempotencyKey: "k1"}})
	require.NoError(t, err)
	assert.Equal(t, []automation.DeliveryBegun{{IdempotencyKey: "k1", State: "new"}}, begun)
	assert.Equal(t, []string{FnRecordDeliveries, FnBeginDeliveries}, calls)
	assert.JSONEq(t, `[{"idempotency_key":"k1","execution_id":"00000000-0000-0000-0000-000000000000","lease_token":"00000000-0000-0000-0000-000000000000","step_index":0,"channel":"","recipient":"","provider":""}]`,
		string(gotBegin["p_deliveries"]))

	calls = nil
	srv = rpcServer(t, map[string]http.HandlerFunc{
		FnRecordDeliveries: func(w http.ResponseWriter, r *http.Request) {
			calls = append(calls, FnRecordDeliveries)
			writeJSON(w, 400, `{"code":"22023","message":"automation_record_deliveries: p_begin must be a JSON array","details":null,"hint":null}`)
		},
		FnBeginDeliveries: func(w http.ResponseWriter, r *http.Request) { calls = append(calls, FnBeginDeliveries) },
	})
	_, err = newClient(t, srv.URL, time.Second).RecordDeliveries(context.Background(), nil, []automation.DeliveryIntent{{IdempotencyKey: "k1"}})
	var re *RPCError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "22023", re.Code)
	assert.Equal(t, []string{FnRecordDeliveries}, calls)
}

func TestRecordAnswerCountMismatchIsError(t *testing.T) {
	srv := rpcServer(t, map[string]http.HandlerFunc{FnRecordDeliveries: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `[]`)
	}})
	_, err := newClient(t, srv.URL, time.Second).RecordDeliveries(context.Background(), nil, []automation.DeliveryIntent{{IdempotencyKey: "k"}})
	require.Error(t, err)
}

func TestPostgRESTErrorObjects(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"undefined function", 404, `{"code":"PGRST202","details":"Searched for the function public.automation_claim with parameters p_x","hint":null,"message":"Could not find the function public.automation_claim(p_x) in the schema cache"}`, "PGRST202"},
		{"raise exception", 400, `{"code":"P0001","details":null,"hint":null,"message":"bad outcome"}`, "P0001"},
		{"permission denied", 403, `{"code":"42501","details":null,"hint":null,"message":"permission denied for function automation_claim"}`, "42501"},
		{"jwt", 401, `{"code":"PGRST301","details":null,"hint":null,"message":"JWSError JWSInvalidSignature"}`, "PGRST301"},
		{"server error", 500, `{"code":"XX000","details":"boom","hint":"retry","message":"internal"}`, "XX000"},
		{"gateway html", 502, `<html>bad gateway</html>`, ""},
		{"error object with 200", 200, `{"code":"57014","details":null,"hint":null,"message":"canceling statement due to statement timeout"}`, "57014"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := rpcServer(t, map[string]http.HandlerFunc{FnReport: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tc.status, tc.body)
			}})
			_, err := newClient(t, srv.URL, time.Second).Report(context.Background(), nil)
			var re *RPCError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.status, re.Status)
			assert.Equal(t, tc.code, re.Code)
			assert.NotEmpty(t, re.Message)
			assert.Equal(t, FnReport, re.Function)
			if tc.code == "XX000" {
				assert.Equal(t, "boom", re.Details)
				assert.Equal(t, "retry", re.Hint)
			}
		})
	}
}

func TestEmptyBodyIsError(t *testing.T) {
	srv := rpcServer(t, map[string]http.HandlerFunc{FnReport: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}})
	_, err := newClient(t, srv.URL, time.Second).Report(context.Background(), nil)
	var re *RPCError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 204, re.Status)
	assert.Contains(t, re.Error(), "empty response body")
}

func TestTransportFailureIsError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused
	_, err := newClient(t, url, time.Second).Claim(context.Background(), automation.ClaimRequest{Action: "send-reminder"})
	var re *RPCError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 0, re.Status)
	require.Error(t, re.Err)
	assert.False(t, re.Timeout())
}

func TestHangingServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := rpcServer(t, map[string]http.HandlerFunc{FnClaim: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done(): // the client really hung up
		}
	}})
	defer close(release)

	// The configured timeout bounds the call.
	start := time.Now()
	_, err := newClient(t, srv.URL, 150*time.Millisecond).Claim(context.Background(), automation.ClaimRequest{Action: "send-reminder"})
	var re *RPCError
	require.ErrorAs(t, err, &re)
	assert.True(t, re.Timeout(), "%v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)

	// So does a shorter context deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = newClient(t, srv.URL, time.Minute).Claim(ctx, automation.ClaimRequest{Action: "send-reminder"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}

// Concurrent calls on one Client never see each other's failures (the
// library's ClientError field is per call). Run with -race.
func TestConcurrentCallsAreIsolated(t *testing.T) {
	srv := rpcServer(t, map[string]http.HandlerFunc{FnReport: func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Outcomes []automation.Outcome `json:"p_outcomes"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Outcomes[0].StepIndex%2 == 1 {
			writeJSON(w, 500, `{"code":"XX000","message":"odd","details":null,"hint":null}`)
			return
		}
		writeJSON(w, 200, `[{"applied":true,"status":"completed"}]`)
	}})
	c := newClient(t, srv.URL, 5*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Report(context.Background(), []automation.Outcome{{StepIndex: i}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			assert.Error(t, err, i)
		} else {
			assert.NoError(t, err, i)
		}
	}
}

func TestNewRequiresURLAndKey(t *testing.T) {
	_, err := New(Config{URL: "http://x"})
	require.Error(t, err)
	var re *RPCError
	assert.False(t, errors.As(err, &re))
}

// BenchmarkNewClient measures the cost of a client per call: the postgrest
// client this adapter builds, against supabase.NewClient (which also builds
// auth, storage and functions clients). Measured: about 4 µs against 13 µs,
// next to about 75 µs for a local round trip (BenchmarkCall); a fresh
// client per call keeps postgrest-go's ClientError from being shared
// between concurrent calls.
func BenchmarkNewClient(b *testing.B) {
	h := map[string]string{"Authorization": "Bearer k", "apikey": "k"}
	b.Run("postgrest", func(b *testing.B) {
		for b.Loop() {
			_ = postgrest.NewClient("http://127.0.0.1:54321/rest/v1", "public", h)
		}
	})
	b.Run("supabase-go", func(b *testing.B) {
		for b.Loop() {
			_, _ = supabasego.NewClient("http://127.0.0.1:54321", "k", nil)
		}
	})
}

// BenchmarkCall is one RPC round trip to a local server.
func BenchmarkCall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `[{"applied":true,"status":"completed"}]`)
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, Key: "k"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Report(context.Background(), []automation.Outcome{{}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
