// Command action is the Lambda function of every action: send-reminder,
// invoice-reminder and run-workflow. Each is its own Lambda function (its
// own URL, secret binding, concurrency and alarms in template.yaml), built
// from this one program and told which action it runs by DUEFLOW_ACTION;
// the three differ in nothing else. It sends the executions in the signed
// batches the database's dispatcher posts.
package main

import (
	"cmp"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/function"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/notify/senders"
	"github.com/dueflow/dueflow/shared/supabase"
	"github.com/dueflow/dueflow/shared/webhook"
)

func main() {
	name := cmp.Or(os.Getenv(config.EnvAction), "action")
	f := function.Init(name, build) // exits naming every problem when a setting is wrong
	lambda.Start(f.HandleFunctionURL)
}

// build wires the handler from one version of the settings (again when
// the secrets change): config, store, senders, engine, verifier, handler.
func build(getenv func(string) string, log *slog.Logger) (function.Built, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return function.Built{}, err
	}
	store, err := supabase.New(supabase.Config{URL: cfg.SupabaseURL, Key: cfg.ServiceRoleKey.Value(), Timeout: cfg.RPCTimeout})
	if err != nil {
		return function.Built{}, err
	}
	email, sms, err := senders.FromConfig(cfg)
	if err != nil {
		return function.Built{}, err
	}
	closeSenders := func() { senders.Close(email, sms) }
	eng, err := engine.New(function.EngineOptions(cfg, store, email, sms, log))
	if err != nil {
		closeSenders()
		return function.Built{}, err
	}
	verifier, err := webhook.NewVerifier(cfg.WebhookSecret.Value(), cfg.Action, webhook.WithMaxBodyBytes(cfg.MaxBodyBytes), webhook.WithMaxIDs(cfg.MaxIDs))
	if err != nil {
		closeSenders()
		return function.Built{}, err
	}
	return function.Built{Handler: lambdaurl.New(verifier, eng, log), LogLevel: cfg.LogLevel, Close: closeSenders, Config: cfg}, nil
}
