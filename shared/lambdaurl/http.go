package lambdaurl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// HTTPHandler serves Function URL events with a plain http.Handler, for
// functions that are not called with signed batches (provider-events): the
// event becomes an *http.Request (method, the path below the URL, query,
// headers, Host, the body decoded from base64 when so flagged) and the
// handler's answer the response. A body over maxBody bytes is answered 413
// before it is decoded or handed over.
type HTTPHandler struct {
	h       http.Handler
	maxBody int
}

var _ http.Handler = (*HTTPHandler)(nil)

// NewHTTPHandler adapts h; maxBody bounds a request body.
func NewHTTPHandler(h http.Handler, maxBody int) *HTTPHandler {
	return &HTTPHandler{h: h, maxBody: maxBody}
}

// ServeHTTP serves a request over net/http with the handler (local use).
func (a *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.h.ServeHTTP(w, r) }

// HandleFunctionURL handles a Lambda Function URL event. It never returns
// an error: every failure is an HTTP answer.
func (a *HTTPHandler) HandleFunctionURL(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	size := len(ev.Body)
	if ev.IsBase64Encoded {
		size = base64.StdEncoding.DecodedLen(len(ev.Body)) - 2
	}
	if size > a.maxBody {
		return jsonResponse(http.StatusRequestEntityTooLarge, "body too large"), nil
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return jsonResponse(http.StatusBadRequest, "body is not valid base64"), nil
		}
		body = b
	}
	host := ev.Headers["host"]
	if host == "" {
		host = ev.RequestContext.DomainName
	}
	path := ev.RawPath
	if path == "" {
		path = "/"
	}
	target := "https://" + host + path
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	r, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, target, bytes.NewReader(body))
	if err != nil {
		return jsonResponse(http.StatusBadRequest, "malformed request"), nil
	}
	for k, v := range ev.Headers {
		r.Header.Set(k, v)
	}
	r.Host = host
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	if r.Header.Get("X-Request-Id") == "" {
		id := ev.RequestContext.RequestID
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			id = lc.AwsRequestID
		}
		r.Header.Set("X-Request-Id", id)
	}
	w := &recorder{header: http.Header{}}
	a.h.ServeHTTP(w, r)
	out := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: map[string]string{}}
	if out.StatusCode == 0 {
		out.StatusCode = http.StatusOK
	}
	for k, vs := range w.header {
		out.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if utf8.Valid(w.body.Bytes()) {
		out.Body = w.body.String()
	} else {
		out.Body, out.IsBase64Encoded = base64.StdEncoding.EncodeToString(w.body.Bytes()), true
	}
	return out, nil
}

func jsonResponse(status int, msg string) events.LambdaFunctionURLResponse {
	b, _ := json.Marshal(ErrorBody{Error: msg})
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"content-type": "application/json"}, Body: string(b)}
}

// recorder is the http.ResponseWriter an event is served into.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
