// Command provider-events is the provider-events Lambda function: one-click
// unsubscribe links, inbound SMS keywords and delivery events from Mailgun,
// Twilio and Telnyx, verified and recorded (see shared/providerevents).
package main

import (
	"fmt"
	"log/slog"

	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/function"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/providerevents"
	"github.com/dueflow/dueflow/shared/supabase"
)

// Name is the function's name (its directory).
const Name = "provider-events"

func main() { function.MainWith(Name, build) }

// build wires the handler from the settings (config.LoadEvents).
func build(getenv func(string) string, log *slog.Logger) (function.Built, error) {
	cfg, err := config.LoadEvents(getenv)
	if err != nil {
		return function.Built{}, err
	}
	client, err := supabase.New(supabase.Config{URL: cfg.SupabaseURL, Key: cfg.ServiceRoleKey.Value(), Timeout: cfg.RPCTimeout})
	if err != nil {
		return function.Built{}, fmt.Errorf("%s: supabase store: %w", Name, err)
	}
	h, err := providerevents.New(providerevents.Options{
		Store:           client,
		UnsubscribeKeys: cfg.UnsubscribeKeys, MailgunSigningKey: cfg.MailgunSigningKey.Value(),
		TwilioAuthToken: cfg.TwilioAuthToken.Value(), TelnyxPublicKey: cfg.TelnyxPublicKey,
		PublicURL: cfg.PublicURL, SMSHelpText: cfg.SMSHelpText, MaxBodyBytes: cfg.MaxBodyBytes, Logger: log,
	})
	if err != nil {
		return function.Built{}, fmt.Errorf("%s: %w", Name, err)
	}
	return function.Built{Handler: lambdaurl.NewHTTPHandler(h, cfg.MaxBodyBytes), LogLevel: cfg.LogLevel}, nil
}
