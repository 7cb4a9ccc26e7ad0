package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/webhook"
)

// FuzzVerifyAndDecode feeds arbitrary bodies and headers to the verifier and
// decoder. With sign=true the body is signed correctly, so the fuzzer reaches
// the strict JSON decoder; otherwise the given headers are used verbatim.
// Invariants: no panic; every error is a classified 400/401/413; every
// accepted request is this function's action with 1..max unique ids.
func FuzzVerifyAndDecode(f *testing.F) {
	f.Add([]byte(body("invoice-reminder", id1, id2)), true, "", "", "")
	f.Add([]byte(body("invoice-reminder", id1, id1)), true, "", "", "")
	f.Add([]byte(body("send-reminder", id1)), true, "", "", "")
	f.Add([]byte(`{"action":"invoice-reminder","execution_ids":[]}`), true, "", "", "")
	f.Add([]byte(`{"action":"invoice-reminder","execution_ids":["`+id1+`"],"x":1}`), true, "", "", "")
	f.Add([]byte(`{"action":"invoice-reminder","execution_ids":["`+id1+`"]} []`), true, "", "", "")
	f.Add([]byte(`{"action":null,"execution_ids":[null]}`), true, "", "", "")
	f.Add([]byte(`[`), true, "", "", "")
	f.Add([]byte(body("invoice-reminder", id1)), false, id1, "1700000000", "v1,abc")
	f.Add([]byte(body("invoice-reminder", id1)), false, id1, "-1", "v1, v1,,, v2,x")
	f.Add([]byte(""), false, "", "", "")

	now := time.Now()
	v := newVerifier(f, webhook.WithClock(func() time.Time { return now }), webhook.WithMaxIDs(8), webhook.WithMaxBodyBytes(4096))
	s, err := webhook.NewSigner(testSecret)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, b []byte, signIt bool, id, ts, sig string) {
		var h http.Header
		if signIt {
			var err error
			h, err = s.SignAt(id1, now, b)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			h = http.Header{}
			h.Set("webhook-id", id)
			h.Set("webhook-timestamp", ts)
			h.Set("webhook-signature", sig)
		}
		req, err := v.VerifyAndDecode(b, h)
		if err != nil {
			switch lambdaurl.StatusCode(err) {
			case 400, 401, 413:
			default:
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if req.Action != "invoice-reminder" || len(req.ExecutionIDs) == 0 || len(req.ExecutionIDs) > 8 {
			t.Fatalf("accepted bad request %+v", req)
		}
		seen := map[string]bool{}
		for _, x := range req.ExecutionIDs {
			if seen[x.String()] {
				t.Fatalf("duplicate id %s", x)
			}
			seen[x.String()] = true
		}
	})
}
