// Package supabase is the one adapter between the functions and the
// database's RPCs (automation_claim, automation_record_deliveries,
// automation_report, automation_record_provider_events) over PostgREST.
//
// It builds postgrest-go's client per call, not supabase-go's (whose transport is private), so
// that each call has its context, HTTP status and error (postgrest-go's client keeps neither).
package supabase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	postgrest "github.com/supabase-community/postgrest-go"
	supabasego "github.com/supabase-community/supabase-go"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/providerevents"
	"github.com/dueflow/dueflow/shared/text"
)

// RPC function names.
const (
	FnClaim            = "automation_claim"
	FnBeginDeliveries  = "automation_begin_deliveries" // before automation_record_deliveries existed
	FnRecordDeliveries = "automation_record_deliveries"
	FnReport           = "automation_report"
)

// DefaultTimeout bounds a call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Prefixes of Supabase's API keys: a secret key (server side, bypasses
// RLS, the successor of the service_role JWT) and a publishable key (the
// anon key's successor: never enough for the automation RPCs).
const (
	SecretKeyPrefix      = "sb_secret_"
	PublishableKeyPrefix = "sb_publishable_"
)

// IsSecretKey reports whether key is a secret key (sb_secret_…) rather than
// a legacy JWT.
func IsSecretKey(key string) bool { return strings.HasPrefix(key, SecretKeyPrefix) }

// UserAgent is sent with every call: dueflow/<module version> ("dev" for a
// build outside a module version). It must not look like a browser's:
// Supabase refuses secret keys from browsers.
var UserAgent = "dueflow/" + version()

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Headers are the headers that authenticate a call with key: apikey only
// for a secret key (Supabase's gateway answers 401 to one in
// Authorization), apikey and Authorization: Bearer for a legacy JWT; and
// the User-Agent.
func Headers(key string) map[string]string {
	h := map[string]string{"apikey": key, "User-Agent": UserAgent}
	if !IsSecretKey(key) {
		h["Authorization"] = "Bearer " + key
	}
	return h
}

// Config configures a Client.
type Config struct {
	URL     string        // project URL, e.g. https://xyz.supabase.co (without /rest/v1)
	Key     string        // secret key (sb_secret_…) or legacy service_role key (a JWT)
	Timeout time.Duration // per-call bound, on top of the context's deadline
	// Transport is the HTTP transport used underneath; nil = a private clone
	// of http.DefaultTransport.
	Transport http.RoundTripper
}

// Client calls the automation RPCs. It is safe for concurrent use.
type Client struct {
	restURL string
	headers map[string]string
	timeout time.Duration
	base    http.RoundTripper
}

var _ providerevents.Store = (*Client)(nil)

// New returns a Client for the project at cfg.URL.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Key == "" {
		return nil, errors.New("supabase: URL and key are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	base := cfg.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		base = t
	}
	return &Client{
		restURL: strings.TrimRight(cfg.URL, "/") + supabasego.REST_URL,
		headers: Headers(cfg.Key),
		timeout: cfg.Timeout,
		base:    base,
	}, nil
}

// RPCError is the detail of a failed RPC: an HTTP error status with
// PostgREST's error object, an empty or unreadable body, a transport
// failure or timeout (Err). Every failed call returns it as the cause of an
// *automation.Error with code internal_error (the database is dueflow's
// own: no caller acts differently on how it failed, the engine defers the
// work, lambdaurl answers 500); its text is the error's text, and errors.As
// reaches it for what failed (Code PGRST202: no such function).
type RPCError struct {
	Function string
	Status   int    // HTTP status, 0 when no response arrived
	Code     string `json:"code"` // PostgREST / SQLSTATE code, e.g. PGRST202, P0001
	Message  string `json:"message"`
	Details  string `json:"details"`
	Hint     string `json:"hint"`
	Err      error  // transport error, context.DeadlineExceeded, ...
}

var _ error = (*RPCError)(nil)

// rpcFailed returns the failure of a call: e as the cause of an
// *automation.Error with code internal_error (see RPCError).
func rpcFailed(e *RPCError) *automation.Error {
	return automation.NewError(automation.CodeInternal, "", e)
}

// Error names the function, the status, PostgREST's code and message, and the cause.
func (e *RPCError) Error() string {
	var b strings.Builder
	b.WriteString("rpc ")
	b.WriteString(e.Function)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Details != "" {
		b.WriteString(" (" + e.Details + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the transport error or context error, if any.
func (e *RPCError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time.
func (e *RPCError) Timeout() bool {
	return errors.Is(e.Err, context.DeadlineExceeded)
}

// Claim calls automation_claim and returns its documents undecoded, one
// per claimed execution (each an automation.Claimed), so that the caller
// decodes each alone: one document it cannot read must not cost the batch.
func (c *Client) Claim(ctx context.Context, req automation.ClaimRequest) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if err := c.Call(ctx, FnClaim, req, &out); err != nil {
		return nil, err // a failure with an *RPCError detail: "rpc automation_claim: ..."
	}
	return out, nil
}

// codeNoFunction is PostgREST's answer for an RPC it does not know.
const codeNoFunction = "PGRST202"

// RecordDeliveries calls automation_record_deliveries: it finishes the
// deliveries whose provider answer is known and begins ds, answering one
// DeliveryBegun per intent. Where that function does not exist yet
// (PGRST202), it begins ds through automation_begin_deliveries and leaves
// finished to the report.
func (c *Client) RecordDeliveries(ctx context.Context, finished []automation.DeliveryFinished, ds []automation.DeliveryIntent) ([]automation.DeliveryBegun, error) {
	if finished == nil {
		finished = []automation.DeliveryFinished{}
	}
	if ds == nil {
		ds = []automation.DeliveryIntent{}
	}
	var out []automation.DeliveryBegun
	err := c.Call(ctx, FnRecordDeliveries, map[string]any{"p_finished": finished, "p_begin": ds}, &out)
	if re := (*RPCError)(nil); errors.As(err, &re) && re.Code == codeNoFunction {
		err = c.Call(ctx, FnBeginDeliveries, map[string]any{"p_deliveries": ds}, &out)
	}
	if err != nil {
		return nil, err // a failure with an *RPCError detail naming the function
	}
	if len(out) != len(ds) {
		return nil, rpcFailed(&RPCError{Function: FnRecordDeliveries, Message: fmt.Sprintf("%d answers for %d deliveries", len(out), len(ds))})
	}
	return out, nil
}

// Report calls automation_report.
func (c *Client) Report(ctx context.Context, os []automation.Outcome) ([]automation.Reported, error) {
	if os == nil {
		os = []automation.Outcome{}
	}
	var out []automation.Reported
	if err := c.Call(ctx, FnReport, map[string]any{"p_outcomes": os}, &out); err != nil {
		return nil, err // a failure with an *RPCError detail: "rpc automation_report: ..."
	}
	return out, nil
}

// Call posts args (a JSON object of named arguments) to /rest/v1/rpc/<fn>
// and decodes the JSON answer into out, within min(ctx's deadline,
// Config.Timeout): the deadline aborts the HTTP request. An error status,
// an empty body, a transport failure or a PostgREST error object
// ({"code","message","details","hint"}) is an internal_error whose cause is
// an *RPCError (rpcFailed).
//
// A timed-out call is safe to give up on: a claim that still commits
// leaves its rows running until their lease expires (then they are claimed
// again: an attempt is spent, nothing is sent); a ledger call leaves rows
// "sending" at worst, which later answer "ambiguous" (not sent again); a
// report that does not apply leaves the lease to expire, and the ledger
// prevents a second send.
func (c *Client) Call(ctx context.Context, fn string, args any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// A client per call: ClientError and the observed status belong to this
	// call alone.
	rt := &callTransport{ctx: ctx, base: c.base}
	pc := postgrest.NewClient(c.restURL, "public", c.headers)
	if pc.ClientError != nil {
		return rpcFailed(&RPCError{Function: fn, Err: pc.ClientError})
	}
	pc.Transport.Parent = rt
	body := pc.Rpc(fn, "", args)

	if pc.ClientError != nil || body == "" {
		e := &RPCError{Function: fn, Status: rt.status, Err: pc.ClientError}
		if ctx.Err() != nil {
			e.Err = ctx.Err() // the transport error only restates it
		}
		if e.Err == nil {
			e.Message = "empty response body"
		}
		return rpcFailed(e)
	}
	raw := []byte(body)
	if rt.status >= 300 || looksLikeError(raw) {
		e := &RPCError{Function: fn, Status: rt.status}
		if err := json.Unmarshal(raw, e); err != nil || (e.Code == "" && e.Message == "") {
			e.Code, e.Message = "", "unexpected response: "+text.Truncate(body, 200)
		}
		return rpcFailed(e)
	}
	if out == nil {
		return nil
	}
	if err := decode(raw, out); err != nil {
		return rpcFailed(&RPCError{Function: fn, Status: rt.status, Message: "decode response", Err: err})
	}
	return nil
}

// decode is json.Unmarshal(raw, out), with the same result, but an array
// decoded into *[]json.RawMessage (the claim's documents, about 1.7 kB
// each) is checked once and cut into its elements in place rather than
// scanned again and copied element by element.
func decode(raw []byte, out any) error {
	docs, ok := out.(*[]json.RawMessage)
	if !ok || !json.Valid(raw) {
		return json.Unmarshal(raw, out)
	}
	elems, ok := splitArray(raw)
	if !ok {
		return json.Unmarshal(raw, out) // not an array (null, an object): as Unmarshal does
	}
	*docs = elems
	return nil
}

// splitArray cuts valid JSON that is an array into its elements (sharing
// raw's bytes); ok false when raw is not an array.
func splitArray(raw []byte) (elems []json.RawMessage, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	elems = []json.RawMessage{}
	i = skipSpace(raw, i+1)
	if raw[i] == ']' {
		return elems, true
	}
	for {
		start, depth := i, 0
	value:
		for ; ; i++ {
			switch raw[i] {
			case '"':
				for i++; raw[i] != '"'; i++ {
					if raw[i] == '\\' {
						i++
					}
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					break value
				}
				depth--
			case ',':
				if depth == 0 {
					break value
				}
			}
		}
		end := i
		for end > start && isSpace(raw[end-1]) {
			end--
		}
		elems = append(elems, json.RawMessage(raw[start:end:end]))
		if raw[i] == ']' {
			return elems, true
		}
		i = skipSpace(raw, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// isSpace: white space between JSON tokens.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// looksLikeError reports whether a 2xx body is a PostgREST error object
// ({"code":..,"message":..}); the RPCs answer arrays, never such an object.
func looksLikeError(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var probe struct {
		Code    *string `json:"code"`
		Message *string `json:"message"`
	}
	return json.Unmarshal(b, &probe) == nil && probe.Code != nil && probe.Message != nil
}

// callTransport binds one call's context to its request and records the
// response status.
type callTransport struct {
	ctx    context.Context
	base   http.RoundTripper
	status int
}

// RoundTrip sends req under the call's context and records the status.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req.WithContext(t.ctx))
	if resp != nil {
		t.status = resp.StatusCode
	}
	return resp, err
}

// FnRecordProviderEvents is the RPC of the provider-events function.
const FnRecordProviderEvents = "automation_record_provider_events"

// providerEvent is the JSON of one element of
// automation_record_provider_events' p_events.
type providerEvent struct {
	Kind              string             `json:"kind"`
	Provider          string             `json:"provider"`
	EventID           string             `json:"event_id"`
	OrganizationID    string             `json:"organization_id"`
	ClientID          string             `json:"client_id"`
	Channel           automation.Channel `json:"channel"`
	Address           string             `json:"address"`
	Sender            string             `json:"sender"`
	ProviderMessageID string             `json:"provider_message_id"`
	Status            string             `json:"status"`
	Permanent         bool               `json:"permanent"`
	Reason            string             `json:"reason"`
	OccurredAt        string             `json:"occurred_at"` // RFC 3339; "" = now
}

// RecordProviderEvents calls automation_record_provider_events with the
// events (shared/providerevents.Store). Each event is applied alone in the
// database: one it cannot read is counted invalid (logged by the caller
// from the difference) and the rest are recorded.
func (c *Client) RecordProviderEvents(ctx context.Context, events []providerevents.Event) (providerevents.Recorded, error) {
	in := make([]providerEvent, len(events))
	for i, e := range events {
		in[i] = providerEvent{Kind: e.Kind, Provider: e.Provider, EventID: e.EventID, OrganizationID: e.OrganizationID,
			ClientID: e.ClientID, Channel: e.Channel, Address: e.Address, Sender: e.Sender,
			ProviderMessageID: e.ProviderMessageID, Status: e.Status, Permanent: e.Permanent,
			Reason: text.Truncate(e.Reason, 200)}
		if !e.OccurredAt.IsZero() {
			in[i].OccurredAt = e.OccurredAt.UTC().Format(time.RFC3339Nano)
		}
	}
	var out struct {
		Recorded   int `json:"recorded"`
		Duplicates int `json:"duplicates"`
		Unmatched  int `json:"unmatched"`
	}
	if err := c.Call(ctx, FnRecordProviderEvents, map[string]any{"p_events": in}, &out); err != nil {
		return providerevents.Recorded{}, err // a failure with an *RPCError detail naming the function
	}
	return providerevents.Recorded{Recorded: out.Recorded, Duplicates: out.Duplicates, Unmatched: out.Unmatched}, nil
}
