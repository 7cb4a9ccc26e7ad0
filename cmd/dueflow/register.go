package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/internal/samtemplate"
	"github.com/dueflow/dueflow/shared/automation"
)

// functionTimeoutMS is the functions' timeout in template.yaml (Timeout: 60);
// pg_net's per-request timeout should be at least this.
const functionTimeoutMS = 60000

// endpointReg is one endpoint to register.
type endpointReg struct {
	Action string
	URL    string
}

// registerOptions are the parsed flags of `dueflow register`.
type registerOptions struct {
	DB        string
	Endpoints []endpointReg
	SecretEnv string
	BatchSize int
	TimeoutMS int
}

func cmdRegister(ctx context.Context, args []string) error {
	return runRegister(ctx, args, os.Stdout, os.Stderr, os.Getenv)
}

func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseRegisterFlags(args, stderr)
	if err != nil {
		return err
	}
	var secret *string
	if o.SecretEnv != "" {
		v := getenv(o.SecretEnv)
		// During a rotation the functions' DUEFLOW_WEBHOOK_SECRET lists
		// "whsec_new whsec_old": the database signs with the first, newest.
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return fmt.Errorf("--secret-env %s: the environment variable is empty or unset", o.SecretEnv)
		}
		if len(fields) > 1 {
			fmt.Fprintf(stdout, "$%s lists %d secrets: storing the first (the newest)\n", o.SecretEnv, len(fields))
		}
		secret = &fields[0]
	}
	return withConn(ctx, o.DB, func(conn *pgx.Conn) error { return registerEndpoints(ctx, conn, o, secret, stdout) })
}

func registerUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dueflow register [--db URL] (--action ACTION --url URL | --outputs FILE) [--secret-env VAR] [--batch-size N] [--timeout-ms MS]

Stores the Function URL of each action in automation_endpoints (and enables
it) and, with --secret-env, the Standard Webhooks signing secret (whsec_...)
in Supabase Vault as dueflow_webhook_secret. The secret is read from the named
environment variable, never from a flag, and never printed.

--outputs reads the JSON of
  aws cloudformation describe-stacks --stack-name STACK --output json
or
  sam list stack-outputs --stack-name STACK --output json
and registers the outputs <LogicalId>Url (SendReminderFunctionUrl, ...).
`)
}

func parseRegisterFlags(args []string, stderr io.Writer) (registerOptions, error) {
	fs := newFlagSet("register", stderr)
	var o registerOptions
	db := dbFlag(fs)
	action := fs.String("action", "", "action to register: "+strings.Join(automation.Actions, ", "))
	url := fs.String("url", "", "Function URL of --action")
	outputs := fs.String("outputs", "", "stack outputs JSON file (- for stdin) instead of --action/--url")
	fs.StringVar(&o.SecretEnv, "secret-env", "", "environment variable holding the signing secret to store in Vault (e.g. DUEFLOW_WEBHOOK_SECRET)")
	fs.IntVar(&o.BatchSize, "batch-size", 0, "execution ids per request (1-500; default: keep, or 100 for a new endpoint)")
	fs.IntVar(&o.TimeoutMS, "timeout-ms", 0, "pg_net request timeout in ms, >= the function timeout (default: keep, or 60000)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	o.DB = *db
	if err := noArgs(fs); err != nil {
		return o, err
	}
	switch {
	case *outputs != "" && (*action != "" || *url != ""):
		return o, usageErrorf("use either --outputs or --action with --url, not both")
	case *outputs != "":
		eps, err := readStackOutputs(*outputs)
		if err != nil {
			return o, err
		}
		o.Endpoints = eps
	case *action != "" && *url != "":
		o.Endpoints = []endpointReg{{Action: *action, URL: *url}}
	case *action != "" || *url != "":
		return o, usageErrorf("--action and --url go together")
	default:
		return o, usageErrorf("nothing to register: give --action and --url, or --outputs")
	}
	if o.BatchSize < 0 || o.TimeoutMS < 0 {
		return o, usageErrorf("--batch-size and --timeout-ms must be positive")
	}
	return o, nil
}

// stackOutput is one output in the JSON of describe-stacks or
// `sam list stack-outputs`.
type stackOutput struct {
	OutputKey   string `json:"OutputKey"`
	OutputValue string `json:"OutputValue"`
}

// readStackOutputs maps the stack outputs <LogicalId>Url to actions.
func readStackOutputs(path string) ([]endpointReg, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read outputs: %w", err)
	}
	outs, err := parseStackOutputs(data)
	if err != nil {
		return nil, fmt.Errorf("outputs %s: %w", path, err)
	}
	var eps []endpointReg
	for _, o := range outs {
		if a, ok := samtemplate.ActionForOutputKey(o.OutputKey, automation.Actions); ok {
			eps = append(eps, endpointReg{Action: a, URL: o.OutputValue})
		}
	}
	if len(eps) == 0 {
		want := make([]string, len(automation.Actions))
		for i, a := range automation.Actions {
			want[i] = samtemplate.OutputKey(a)
		}
		return nil, fmt.Errorf("outputs %s: none of %s found", path, strings.Join(want, ", "))
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Action < eps[j].Action })
	return eps, nil
}

// parseStackOutputs accepts {"Stacks":[{"Outputs":[...]}]} (describe-stacks)
// and [...] (sam list stack-outputs --output json).
func parseStackOutputs(data []byte) ([]stackOutput, error) {
	var list []stackOutput
	if err := json.Unmarshal(data, &list); err == nil {
		return list, nil
	}
	var desc struct {
		Stacks []struct {
			Outputs []stackOutput `json:"Outputs"`
		} `json:"Stacks"`
	}
	if err := json.Unmarshal(data, &desc); err != nil {
		return nil, fmt.Errorf("not the JSON of describe-stacks or sam list stack-outputs: %w", err)
	}
	if len(desc.Stacks) != 1 {
		return nil, fmt.Errorf("want exactly one stack, found %d (pass --stack-name)", len(desc.Stacks))
	}
	return desc.Stacks[0].Outputs, nil
}

// registerEndpoints calls automation_register_endpoint for every endpoint in
// one transaction (each stores the secret, when given, under its endpoint's
// secret_name) and prints what was stored, never the secret.
func registerEndpoints(ctx context.Context, conn *pgx.Conn, o registerOptions, secret *string, w io.Writer) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	nullInt := func(v int) *int {
		if v == 0 {
			return nil
		}
		return &v
	}
	type stored struct {
		action, url, secretName string
		enabled                 bool
		batch, timeout          int
	}
	var done []stored
	for _, ep := range o.Endpoints {
		var r stored
		err := tx.QueryRow(ctx,
			`select action, url, enabled, batch_size, timeout_ms, secret_name
			   from public.automation_register_endpoint($1, $2, $3, $4, $5)`,
			ep.Action, ep.URL, secret, nullInt(o.BatchSize), nullInt(o.TimeoutMS),
		).Scan(&r.action, &r.url, &r.enabled, &r.batch, &r.timeout, &r.secretName)
		if err != nil {
			return fmt.Errorf("register %s: %w", ep.Action, err)
		}
		done = append(done, r)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, r := range done {
		fmt.Fprintf(w, "registered %-16s %s (enabled, batch %d, timeout %d ms, secret %s)\n", r.action, r.url, r.batch, r.timeout, r.secretName)
		if r.timeout < functionTimeoutMS {
			fmt.Fprintf(w, "warning: %s: pg_net timeout %d ms is below the functions' %d ms timeout; pg_net will record timeouts for calls still working\n", r.action, r.timeout, functionTimeoutMS)
		}
	}
	if secret != nil && len(done) > 0 {
		fmt.Fprintf(w, "stored the signing secret from $%s in Vault as %s\n", o.SecretEnv, done[0].secretName)
	}
	return nil
}
