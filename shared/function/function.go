// Package function is the wiring shared by every action's Lambda function:
// configuration -> RPC adapter, senders, engine, webhook verifier ->
// Function URL handler. Each functions/<action>/main.go only calls Main.
package function

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/phone"
	"github.com/dueflow/dueflow/shared/supabase"
	"github.com/dueflow/dueflow/shared/webhook"
)

// started approximates the process start (package initialisation).
var started = time.Now()

// Main runs the function of action under the Lambda runtime. A
// configuration error ends the process at cold start with every problem
// named.
func Main(action string) {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", action, err)
		os.Exit(1)
	}
	log := Logger(os.Stdout, cfg.LogLevel)
	h, err := Build(action, cfg, log)
	if err != nil {
		log.Error("function init failed", "action", action, "error", err)
		fmt.Fprintf(os.Stderr, "%s: %v\n", action, err)
		os.Exit(1)
	}
	log.Info("function ready", "action", action, "init_ms", time.Since(started).Milliseconds(),
		"email_provider", cfg.EmailProvider, "sms_provider", cfg.SMSProvider)
	lambda.Start(h.HandleFunctionURL)
}

// Logger returns the JSON logger of a function.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Build wires the handler of action from cfg.
func Build(action string, cfg *config.Config, log *slog.Logger) (*lambdaurl.Handler, error) {
	store, err := supabase.New(supabase.Config{URL: cfg.SupabaseURL, Key: cfg.ServiceRoleKey.Value(), Timeout: cfg.RPCTimeout})
	if err != nil {
		return nil, fmt.Errorf("function: supabase store: %w", err)
	}
	email, sms, err := cfg.Senders()
	if err != nil {
		return nil, fmt.Errorf("function: senders: %w", err)
	}
	eng, err := engine.New(engine.Options{
		Action: action, Store: store, Email: email, SMS: sms,
		EmailFrom: cfg.EmailFrom, EmailFromName: cfg.EmailFromName,
		Concurrency: cfg.Concurrency, LeaseSeconds: cfg.LeaseSeconds, Batch: cfg.MaxIDs,
		NormalizePhone: phone.ParseE164, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("function: engine: %w", err)
	}
	v, err := webhook.NewVerifier(cfg.WebhookSecret.Value(), action,
		webhook.WithMaxBodyBytes(cfg.MaxBodyBytes), webhook.WithMaxIDs(cfg.MaxIDs))
	if err != nil {
		return nil, fmt.Errorf("function: webhook verifier: %w", err)
	}
	return lambdaurl.New(v, eng, log), nil
}
