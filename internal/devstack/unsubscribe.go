package devstack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// PostOneClick unsubscribes through a one-click link as a mail client does
// (RFC 8058): a POST of List-Unsubscribe=One-Click, form-encoded, without
// cookies or credentials. It returns the HTTP status.
func PostOneClick(ctx context.Context, link string) (int, error) {
	body := url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("one-click unsubscribe: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("one-click unsubscribe: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// UnsubscribeLink finds the first one-click link to base (the stack's
// ProviderEventsURL) in a message's text part: the opt-out line of a
// non-transactional email. It answers "" when there is none.
func UnsubscribeLink(text, base string) string {
	i := strings.Index(text, base+"/unsubscribe?")
	if i < 0 {
		return ""
	}
	link := text[i:]
	if j := strings.IndexAny(link, " \t\r\n<>\"')"); j >= 0 {
		link = link[:j]
	}
	return link
}
