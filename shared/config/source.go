package config

import (
	"fmt"
	"slices"
	"strings"
)

// SecretKeys are the settings that are secrets: the keys of the Secrets
// Manager secret (shared/secrets) and, locally, environment variables.
var SecretKeys = []string{
	EnvSecretKey, EnvServiceRoleKey, "DUEFLOW_WEBHOOK_SECRET", EnvUnsubscribeKeys,
	"SMTP_PASSWORD", "MAILGUN_API_KEY", "TWILIO_AUTH_TOKEN", "TELNYX_API_KEY",
	// the provider-events function's (LoadEvents)
	EnvMailgunSigningKey, EnvTelnyxPublicKey, EnvUnsubscribeKeys,
}

// IsSecretSetting reports whether name (a setting) is one of SecretKeys.
func IsSecretSetting(name string) bool { return slices.Contains(SecretKeys, name) }

// Overlay returns a getenv that answers the secret keys from secrets (a
// key the secret holds wins over the environment) and everything else from
// getenv. A key of secrets that is not a secret setting is refused (named,
// never its value): the secret holds secrets only; other settings are the
// template's parameters.
func Overlay(getenv func(string) string, secrets map[string]string) (func(string) string, error) {
	var foreign []string
	for k := range secrets {
		if !IsSecretSetting(k) {
			foreign = append(foreign, k)
		}
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		return nil, fmt.Errorf("config: the secret holds keys that are not secret settings: %s (secret keys: %s; set other settings in the environment)",
			strings.Join(foreign, ", "), strings.Join(SecretKeys, ", "))
	}
	return func(name string) string {
		if v, ok := secrets[name]; ok {
			return v
		}
		return getenv(name)
	}, nil
}
