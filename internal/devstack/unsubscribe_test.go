package devstack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnsubscribeLink(t *testing.T) {
	const base = "http://127.0.0.1:40123"
	link := base + "/unsubscribe?t=v1.eyJvIjoiYSJ9.c2ln-_"
	assert.Equal(t, link, UnsubscribeLink("Hi.\n\nUnsubscribe: "+link+"\r\nAcme, 1 Main St", base))
	assert.Equal(t, link, UnsubscribeLink(`<a href="`+link+`">unsubscribe</a>`, base))
	assert.Empty(t, UnsubscribeLink("no link here "+link, "http://127.0.0.1:4012"), "another stack's link")
}

// PostOneClick sends what RFC 8058 says a mail client sends.
func TestPostOneClick(t *testing.T) {
	var method, ctype, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		method, ctype, body = r.Method, r.Header.Get("Content-Type"), string(b)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	status, err := PostOneClick(context.Background(), srv.URL+"/unsubscribe?t=x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, []string{http.MethodPost, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"}, []string{method, ctype, body})
}
