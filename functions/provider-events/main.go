// Command provider-events is the provider-events Lambda function: one-click
// unsubscribe links, inbound SMS keywords and delivery events from Mailgun,
// Twilio and Telnyx, verified and recorded (see shared/providerevents).
package main

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/function"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/providerevents"
	"github.com/dueflow/dueflow/shared/supabase"
)

// Name is the function's name (its directory).
const Name = "provider-events"

func main() {
	f := function.Init(Name, build) // exits naming every problem when a setting is wrong
	lambda.Start(f.HandleFunctionURL)
}

// build wires the handler from one version of the settings (again when
// the secrets change): config, store, the providers' verifiers, handler.
func build(getenv func(string) string, log *slog.Logger) (function.Built, error) {
	cfg, err := config.LoadEvents(getenv)
	if err != nil {
		return function.Built{}, err
	}
	store, err := supabase.New(supabase.Config{URL: cfg.SupabaseURL, Key: cfg.ServiceRoleKey.Value(), Timeout: cfg.RPCTimeout})
	if err != nil {
		return function.Built{}, err
	}
	h, err := providerevents.New(providerevents.Options{
		Store:           store,
		UnsubscribeKeys: cfg.UnsubscribeKeys, MailgunSigningKey: cfg.MailgunSigningKey.Value(),
		TwilioAuthToken: cfg.TwilioAuthToken.Value(), TelnyxPublicKey: cfg.TelnyxPublicKey,
		PublicURL: cfg.PublicURL, SMSHelpText: cfg.SMSHelpText, MaxBodyBytes: cfg.MaxBodyBytes, Logger: log,
	})
	if err != nil {
		return function.Built{}, err
	}
	return function.Built{Handler: lambdaurl.NewHTTPHandler(h, cfg.MaxBodyBytes), LogLevel: cfg.LogLevel}, nil
}
