package console_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/console"
	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
)

// hostileOutbox holds one email whose HTML tries to run a script.
type hostileOutbox struct{}

func (hostileOutbox) Emails(context.Context) ([]devstack.Email, error) {
	return []devstack.Email{{Subject: "Hello", Text: "Hi there",
		HTML: `<html><body><h1>Hi there</h1><script>parent.document.title = "pwned"; document.body.innerHTML = "ran"</script></body></html>`}}, nil
}

func (hostileOutbox) SMS() []devstack.SMS { return nil }

// An email's HTML is shown in a frame where no script runs: neither on the
// console's page nor inside the frame.
func TestOutboxFrameRunsNoScript(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	srv, err := console.New(console.Config{DB: db, Outbox: hostileOutbox{}})
	require.NoError(t, err)
	web := httptest.NewServer(srv)
	defer web.Close()
	rctx, cancel := context.WithTimeout(browser(t), 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(rctx, chromedp.Navigate(web.URL+"/outbox"), chromedp.WaitVisible(chromedp.CSS("article.email iframe")),
		chromedp.Sleep(time.Second)))
	title, err := chromedp.Run(rctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "Outbox · dueflow console", title)
	// the frame's document is served sandboxed too (CSP sandbox: opaque
	// origin, no scripts), whoever frames it
	csp, err := chromedp.Run(rctx, chromedp.Evaluate[string](`fetch("/outbox/email/0").then(r => r.headers.get("Content-Security-Policy"))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Contains(t, csp, "sandbox")
	assert.Contains(t, csp, "default-src 'none'")
}
