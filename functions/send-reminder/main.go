// Command send-reminder is the send-reminder Lambda function (maintenance,
// appointment and stale-job reminders): it sends the executions in the
// signed batches the database's dispatcher posts.
package main

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/function"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/notify/senders"
	"github.com/dueflow/dueflow/shared/supabase"
	"github.com/dueflow/dueflow/shared/webhook"
)

const action = automation.ActionSendReminder

func main() {
	f := function.Init(action, build) // exits naming every problem when a setting is wrong
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
	eng, err := engine.New(function.EngineOptions(action, cfg, store, email, sms, log))
	if err != nil {
		closeSenders()
		return function.Built{}, err
	}
	verifier, err := webhook.NewVerifier(cfg.WebhookSecret.Value(), action, webhook.WithMaxBodyBytes(cfg.MaxBodyBytes), webhook.WithMaxIDs(cfg.MaxIDs))
	if err != nil {
		closeSenders()
		return function.Built{}, err
	}
	return function.Built{Handler: lambdaurl.New(verifier, eng, log), LogLevel: cfg.LogLevel, Close: closeSenders, Config: cfg}, nil
}
