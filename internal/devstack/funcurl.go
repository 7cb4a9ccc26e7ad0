package devstack

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
)

// maxFunctionURLPayload is Lambda's limit for a synchronous invocation's
// request and response payload (6 MB).
const maxFunctionURLPayload = 6 << 20

// FunctionURLEvent turns an HTTP request into the event a Lambda Function URL
// (payload format 2.0, AuthType NONE) hands to its function. rawPath is the
// path below the function URL ("/" for the URL itself).
//
// Long: a field-by-field copy of an HTTP request into the Function URL event (payload 2.0)
func FunctionURLEvent(r *http.Request, rawPath string, body []byte, apiID string) events.LambdaFunctionURLRequest {
	now := time.Now()
	headers := make(map[string]string, len(r.Header)+1)
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	if rawPath == "" {
		rawPath = "/"
	}
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := events.LambdaFunctionURLRequest{
		Version:               "2.0",
		RawPath:               rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    uuid.NewString(),
			APIID:        apiID,
			DomainName:   r.Host,
			DomainPrefix: apiID,
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// WriteFunctionURLResponse maps a function's invocation result back to HTTP
// the way a Function URL does: a JSON object with "statusCode" is a
// LambdaFunctionURLResponse; any other valid JSON is returned as a 200
// application/json body; a function error is a 502.
func WriteFunctionURLResponse(w http.ResponseWriter, payload []byte, functionError bool) {
	if functionError {
		writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(payload, &probe); err == nil {
		if _, isErr := probe["errorType"]; isErr && probe["statusCode"] == nil {
			writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
			return
		}
		if _, ok := probe["statusCode"]; ok {
			var resp events.LambdaFunctionURLResponse
			if err := json.Unmarshal(payload, &resp); err != nil {
				writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
				return
			}
			body := []byte(resp.Body)
			if resp.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(resp.Body)
				if err != nil {
					writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
					return
				}
				body = b
			}
			for k, v := range resp.Headers {
				w.Header().Set(k, v)
			}
			for _, c := range resp.Cookies {
				w.Header().Add("Set-Cookie", c)
			}
			if w.Header().Get("Content-Type") == "" {
				w.Header().Set("Content-Type", "application/json")
			}
			status := resp.StatusCode
			if status == 0 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			_, _ = w.Write(body)
			return
		}
	}
	if !json.Valid(payload) {
		writeJSONError(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}

// readLimited reads at most limit bytes of r; more is an error.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("payload larger than %d bytes", limit)
	}
	return b, nil
}
