// Package lambdaurl adapts a function to its callers: a Lambda Function URL
// event (or an API Gateway HTTP API payload v2.0, which has the same shape)
// or a plain net/http request is checked by the webhook verifier (size,
// signature, strict JSON) and only then handed to the Processor. Rejections
// are answered with 401, 400, 413 or 405 and a JSON {"error": "..."} before
// any database work; processor failures become a generic 500.
package lambdaurl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/redact"
	"github.com/dueflow/dueflow/shared/text"
	"github.com/dueflow/dueflow/shared/webhook"
)

// Processor does the work of one verified request (claim, send, report).
type Processor interface {
	Process(ctx context.Context, req automation.Request) (automation.Summary, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, req automation.Request) (automation.Summary, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, req automation.Request) (automation.Summary, error) {
	return f(ctx, req)
}

var _ Processor = ProcessorFunc(nil)

// ErrorBody is the JSON body of every non-200 answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// Handler serves one function's requests. Use HandleFunctionURL with
// lambda.Start, or the Handler itself as an http.Handler.
type Handler struct {
	verifier  *webhook.Verifier
	processor Processor
	log       *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler. A nil logger means slog.Default().
func New(v *webhook.Verifier, p Processor, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{verifier: v, processor: p, log: log}
}

// StatusCode maps an error's code (automation.ErrorCode) to the HTTP status
// of the answer: a rejected request's unauthorized 401, too_large 413,
// invalid_request 400; anything else 500.
func StatusCode(err error) int {
	switch automation.ErrorCode(err) {
	case automation.CodeUnauthorized:
		return http.StatusUnauthorized
	case automation.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case automation.CodeInvalidRequest:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// response is a transport-neutral answer.
type response struct {
	status int
	body   []byte
	allow  bool // add "Allow: POST" (405)
}

// request is a transport-neutral request; body is read lazily so that the
// size is checked before anything else is done with it.
type request struct {
	method    string
	header    http.Header
	requestID string
	body      func() ([]byte, error)
}

func errorResponse(status int, msg string) response {
	b, _ := json.Marshal(ErrorBody{Error: msg})
	return response{status: status, body: b, allow: status == http.StatusMethodNotAllowed}
}

// serve is the one implementation behind both transports.
func (h *Handler) serve(ctx context.Context, r request) response {
	start := time.Now()
	log := h.log.With("action", h.verifier.Action(), "request_id", r.requestID)
	if id := r.header.Get(webhook.HeaderID); id != "" {
		log = log.With("webhook_id", text.Truncate(id, 64))
	}
	if r.method != http.MethodPost {
		log.WarnContext(ctx, "request rejected", "status", http.StatusMethodNotAllowed, "method", text.Truncate(r.method, 16))
		return errorResponse(http.StatusMethodNotAllowed, "method not allowed")
	}
	body, err := r.body()
	if err == nil {
		var req automation.Request
		req, err = h.verifier.VerifyAndDecode(body, r.header)
		if err == nil {
			return h.process(ctx, log, req, start)
		}
	}
	status, msg := StatusCode(err), "unreadable request body"
	var ae *automation.Error
	if errors.As(err, &ae) {
		msg = ae.Message
	}
	if status == http.StatusInternalServerError { // unclassified read failure
		status, msg = http.StatusBadRequest, "unreadable request body"
	}
	log.WarnContext(ctx, "request rejected", "status", status, "reason", msg)
	return errorResponse(status, msg)
}

func (h *Handler) process(ctx context.Context, log *slog.Logger, req automation.Request, start time.Time) response {
	log.InfoContext(ctx, "request verified", "ids", len(req.ExecutionIDs))
	sum, err := h.processor.Process(ctx, req)
	if err != nil {
		// A database error's details may quote a row: masked (redact.Text).
		log.ErrorContext(ctx, "processing failed", "error", redact.Text(err.Error()), "duration_ms", time.Since(start).Milliseconds())
		return errorResponse(http.StatusInternalServerError, "internal error")
	}
	b, err := json.Marshal(sum)
	if err != nil {
		log.ErrorContext(ctx, "encoding summary failed", "error", err.Error())
		return errorResponse(http.StatusInternalServerError, "internal error")
	}
	log.InfoContext(ctx, "request done", "status", http.StatusOK, "requested", sum.Requested, "claimed", sum.Claimed,
		"completed", sum.Completed, "skipped", sum.Skipped, "retried", sum.Retried, "deferred", sum.Deferred, "failed", sum.Failed,
		"snoozed", sum.Snoozed, "stale", sum.Stale, "duration_ms", time.Since(start).Milliseconds())
	return response{status: http.StatusOK, body: b}
}

// HandleFunctionURL handles a Lambda Function URL event (also an API
// Gateway HTTP API payload v2.0 event). It never returns an error: every
// failure is an HTTP answer, so Lambda does not turn it into a 502.
func (h *Handler) HandleFunctionURL(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	hdr := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		hdr.Set(k, v) // canonicalises: any case is accepted
	}
	reqID := ev.RequestContext.RequestID
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		reqID = lc.AwsRequestID
	}
	r := request{method: ev.RequestContext.HTTP.Method, header: hdr, requestID: reqID, body: func() ([]byte, error) {
		if !ev.IsBase64Encoded {
			if err := h.verifier.CheckSize(len(ev.Body)); err != nil {
				return nil, err
			}
			return []byte(ev.Body), nil
		}
		// Bound the encoded size before decoding anything.
		if err := h.verifier.CheckSize(base64.StdEncoding.DecodedLen(len(ev.Body)) - 2); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, automation.NewError(automation.CodeInvalidRequest, "body is not valid base64", webhook.ErrMalformed)
		}
		if err := h.verifier.CheckSize(len(b)); err != nil {
			return nil, err
		}
		return b, nil
	}}
	resp := h.serve(ctx, r)
	out := events.LambdaFunctionURLResponse{
		StatusCode: resp.status,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(resp.body),
	}
	if resp.allow {
		out.Headers["allow"] = http.MethodPost
	}
	return out, nil
}

// ServeHTTP handles the same requests over net/http (local use, tests).
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := request{method: req.Method, header: req.Header, requestID: req.Header.Get("x-request-id"), body: func() ([]byte, error) {
		if req.ContentLength > 0 {
			if err := h.verifier.CheckSize(int(min(req.ContentLength, int64(h.verifier.MaxBodyBytes())+1))); err != nil {
				return nil, err
			}
		}
		return h.verifier.ReadBody(req.Body)
	}}
	resp := h.serve(req.Context(), r)
	w.Header().Set("Content-Type", "application/json")
	if resp.allow {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}
