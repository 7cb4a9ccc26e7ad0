package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/lambdafns"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/webhook"
)

// invokeOptions are the parsed flags of `dueflow invoke`.
type invokeOptions struct {
	Fn       string
	Event    string
	StateDir string
}

func invokeUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow invoke --fn FUNCTION [--event FILE] [--state-dir DIR]

Runs one function once under the Lambda Runtime Interface Emulator with a
Function URL event (payload format 2.0), the way sam local invoke does but
without Docker. The function gets the environment of the running local stack
(dueflow demo, in another terminal); an unsigned event is signed with the
stack's webhook secret. Prints the function's status code and body.
`)
}

func parseInvokeFlags(args []string, stderr io.Writer) (invokeOptions, error) {
	fs := newFlagSet("invoke", stderr)
	var o invokeOptions
	fs.StringVar(&o.Fn, "fn", "", "function to run: "+strings.Join(automation.Actions, ", ")+" (required)")
	fs.StringVar(&o.Event, "event", "", "Function URL event (JSON, payload format 2.0; default events/<fn>.json)")
	fs.StringVar(&o.StateDir, "state-dir", "", "data directory of the local stack whose environment the function gets (default <repo>/.dueflow/demo)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if err := noArgs(fs); err != nil {
		return o, err
	}
	if o.Fn == "" {
		return o, usageErrorf("--fn is required (one of %s)", strings.Join(automation.Actions, ", "))
	}
	if !automation.IsAction(o.Fn) {
		return o, usageErrorf("unknown function %q (one of %s)", o.Fn, strings.Join(automation.Actions, ", "))
	}
	if o.Event == "" {
		o.Event = filepath.Join("events", o.Fn+".json")
	}
	return o, nil
}

func cmdInvoke(ctx context.Context, args []string) error {
	opts, err := parseInvokeFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	root, err := rootAndStateDir(&opts.StateDir)
	if err != nil {
		return err
	}
	return runInvoke(ctx, root, opts, os.Stdout, os.Stderr)
}

// functionEnvFile is where `dueflow demo` writes the environment the local
// stack gives its functions, for `dueflow invoke` in another terminal.
func functionEnvFile(stateDir string) string { return filepath.Join(stateDir, "function.env") }

// writeEnvFile writes KEY=value lines (mode 0600: it holds the stack's
// development secrets).
func writeEnvFile(path string, env []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var b bytes.Buffer
	b.WriteString("# environment of the local stack's functions, written by `dueflow demo`\n")
	for _, kv := range env {
		b.WriteString(kv)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readEnvFile reads KEY=value lines; blank lines and # comments are ignored.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("%s: not KEY=value: %q", path, line)
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}

// envValue returns the last value of key in env.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// urlEvent is a Function URL event as read from a file: the typed view, and
// the raw document so that fields the Go type does not model (routeKey,
// requestContext.stage, ...) are passed on unchanged.
type urlEvent struct {
	events.LambdaFunctionURLRequest
	raw map[string]json.RawMessage
}

// loadEvent reads a Function URL event and checks its shape.
func loadEvent(path string) (*urlEvent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	e := &urlEvent{}
	if err := json.Unmarshal(b, &e.raw); err != nil {
		return nil, fmt.Errorf("event %s is not a JSON object: %w", path, err)
	}
	if err := json.Unmarshal(b, &e.LambdaFunctionURLRequest); err != nil {
		return nil, fmt.Errorf("event %s is not a Function URL event: %w", path, err)
	}
	if e.Version != "2.0" {
		return nil, fmt.Errorf("event %s: version %q, want \"2.0\" (Function URL payload format)", path, e.Version)
	}
	if e.RequestContext.HTTP.Method == "" {
		return nil, fmt.Errorf("event %s: requestContext.http.method is missing", path)
	}
	return e, nil
}

// payload is the event to hand to the function: the raw document with the
// headers and request time as they are now.
func (e *urlEvent) payload() ([]byte, error) {
	out := make(map[string]json.RawMessage, len(e.raw)+1)
	for k, v := range e.raw {
		out[k] = v
	}
	h, err := json.Marshal(e.Headers)
	if err != nil {
		return nil, err
	}
	out["headers"] = h
	rc := map[string]json.RawMessage{}
	if r, ok := e.raw["requestContext"]; ok {
		if err := json.Unmarshal(r, &rc); err != nil {
			return nil, fmt.Errorf("requestContext: %w", err)
		}
	}
	if rc["time"], err = json.Marshal(e.RequestContext.Time); err != nil {
		return nil, err
	}
	if rc["timeEpoch"], err = json.Marshal(e.RequestContext.TimeEpoch); err != nil {
		return nil, err
	}
	if out["requestContext"], err = json.Marshal(rc); err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// signEvent adds fresh Standard Webhooks headers over the event's body when
// it has no webhook-signature header. It reports whether it signed.
func signEvent(ev *urlEvent, secret string) (bool, error) {
	for k := range ev.Headers {
		if strings.EqualFold(k, webhook.HeaderSignature) {
			return false, nil
		}
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return false, fmt.Errorf("event body: isBase64Encoded but not base64: %w", err)
		}
		body = b
	}
	s, err := webhook.NewSigner(secret)
	if err != nil {
		return false, err
	}
	h, err := s.Sign(body)
	if err != nil {
		return false, err
	}
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	for k, v := range webhook.Headers(h) {
		ev.Headers[k] = v
	}
	now := time.Now()
	ev.RequestContext.Time = now.UTC().Format("02/Jan/2006:15:04:05 -0700")
	ev.RequestContext.TimeEpoch = now.UnixMilli()
	return true, nil
}

// invokeResult is what runInvoke prints.
type invokeResult struct {
	FunctionError bool
	Payload       []byte
}

// runFunction builds function fn for the host (devstack.BuildNamed)
// and runs it once under bin/aws-lambda-rie (devstack's RIE runner) with env
// and payload. It returns the result and the function's log file.
func runFunction(ctx context.Context, root, fn, workDir string, env []string, payload []byte, logger *slog.Logger) (invokeResult, string, error) {
	rie, err := devstack.ToolPath(root, "aws-lambda-rie")
	if err != nil {
		return invokeResult{}, "", err
	}
	built, err := devstack.BuildNamed(ctx, root, workDir, fn)
	if err != nil {
		return invokeResult{}, "", err
	}
	f := devstack.NewFunction(devstack.FunctionSpec{Name: fn, Bootstrap: built[fn], Env: append(slices.Clip(env), lambdafns.Env(fn)...)}, rie, filepath.Join(workDir, "logs"), logger)
	logPath := f.LogPath(0)
	if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return invokeResult{}, "", fmt.Errorf("clear %s: %w", logPath, err)
	}
	if err := f.Start(ctx); err != nil {
		return invokeResult{}, logPath, err
	}
	defer func() { _ = f.Stop(context.WithoutCancel(ctx)) }()
	res, fnErr, err := f.Invoke(ctx, payload)
	if err != nil {
		return invokeResult{}, logPath, err
	}
	return invokeResult{FunctionError: fnErr, Payload: res}, logPath, nil
}

func runInvoke(ctx context.Context, root string, opts invokeOptions, stdout, stderr io.Writer) error {
	eventPath := opts.Event
	if !filepath.IsAbs(eventPath) {
		eventPath = filepath.Join(root, eventPath)
	}
	ev, err := loadEvent(eventPath)
	if err != nil {
		return err
	}
	envPath := functionEnvFile(opts.StateDir)
	env, err := readEnvFile(envPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no local stack environment at %s: start the local stack first (`make demo` in another terminal)", envPath)
	}
	if err != nil {
		return err
	}
	secret, from := os.Getenv("DUEFLOW_WEBHOOK_SECRET"), "DUEFLOW_WEBHOOK_SECRET from the environment"
	if secret == "" {
		secret, from = envValue(env, "DUEFLOW_WEBHOOK_SECRET"), "the local stack's secret ("+envPath+")"
	} else {
		env = append(env, "DUEFLOW_WEBHOOK_SECRET="+secret) // the function verifies with what we sign with
	}
	signed, err := signEvent(ev, secret)
	if err != nil {
		return fmt.Errorf("sign the event: %w", err)
	}
	if signed {
		fmt.Fprintf(stderr, "invoke: signed the event body with %s\n", from)
	} else {
		fmt.Fprintln(stderr, "invoke: the event carries a webhook-signature; sent as is")
	}
	payload, err := ev.payload()
	if err != nil {
		return fmt.Errorf("encode the event: %w", err)
	}

	work := filepath.Join(opts.StateDir, "invoke")
	fmt.Fprintf(stderr, "invoke: building %s (%s) for %s/%s and running it under bin/aws-lambda-rie\n", opts.Fn, lambdafns.Package(opts.Fn), runtime.GOOS, runtime.GOARCH)
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, logPath, err := runFunction(ctx, root, opts.Fn, work, env, payload, logger)
	if b, rerr := os.ReadFile(logPath); logPath != "" && rerr == nil && len(b) > 0 {
		fmt.Fprintf(stderr, "---- function log (%s)\n%s", logPath, b)
		if !bytes.HasSuffix(b, []byte("\n")) {
			fmt.Fprintln(stderr)
		}
	}
	if err != nil {
		return err
	}
	return printInvokeResult(stdout, res)
}

// printInvokeResult prints the function's answer; a Function URL response
// ({"statusCode", "body", ...}) shows its status and its body (indented when
// JSON). A function error is an error.
func printInvokeResult(w io.Writer, res invokeResult) error {
	if res.FunctionError {
		fmt.Fprintf(w, "%s\n", res.Payload)
		return errors.New("the function returned an error")
	}
	var resp events.LambdaFunctionURLResponse
	var probe map[string]json.RawMessage
	if json.Unmarshal(res.Payload, &probe) == nil && probe["statusCode"] != nil && json.Unmarshal(res.Payload, &resp) == nil {
		body := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
				body = b
			}
		}
		fmt.Fprintf(w, "statusCode: %d\n", resp.StatusCode)
		var pretty bytes.Buffer
		if json.Indent(&pretty, body, "", "  ") == nil {
			body = pretty.Bytes()
		}
		fmt.Fprintf(w, "%s\n", body)
		return nil
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, res.Payload, "", "  ") == nil {
		fmt.Fprintf(w, "%s\n", pretty.Bytes())
		return nil
	}
	fmt.Fprintf(w, "%s\n", res.Payload)
	return nil
}
