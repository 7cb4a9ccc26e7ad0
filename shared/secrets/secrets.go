// Package secrets reads a function's secret settings. With
// DUEFLOW_SECRET_ID set they come from that one AWS Secrets Manager secret,
// whose SecretString is a JSON object keyed by the environment variable
// names ({"SUPABASE_SERVICE_ROLE_KEY": "...", ...}); without it, from the
// environment, as locally. A Cache keeps the last good values and re-reads
// them when they are older than a max age, so a rotated value reaches a
// warm function without a deploy. Errors and logs name the secret, never a
// value.
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Environment variables of this package.
const (
	// EnvSecretID names the Secrets Manager secret (name or ARN).
	EnvSecretID = "DUEFLOW_SECRET_ID"
	// EnvMaxAge is the longest a read is used before it is read again (a
	// Go duration, default DefaultMaxAge).
	EnvMaxAge = "DUEFLOW_SECRETS_MAX_AGE"
)

// Defaults and bounds.
const (
	DefaultMaxAge = 5 * time.Minute
	// MaxMaxAge bounds DUEFLOW_SECRETS_MAX_AGE: a rotation must take
	// effect within a day.
	MaxMaxAge = 24 * time.Hour
	// ColdStartTimeout bounds the first read (Lambda's init phase has 10 s).
	ColdStartTimeout = 5 * time.Second
	// RefreshTimeout bounds a re-read inside a request: a slow Secrets
	// Manager must not eat the batch's time.
	RefreshTimeout = 2 * time.Second
	// RetryAfterFailure is how long a failed re-read is not tried again
	// (the last good values are used meanwhile), at most the max age.
	RetryAfterFailure = time.Minute
)

// Source reads the secret settings.
type Source interface {
	// Read returns the secret keys and their values. Its errors name the
	// source, never a value.
	Read(ctx context.Context) (map[string]string, error)
	// Name names the source in logs and errors ("environment" or the
	// secret id); never a value.
	Name() string
}

// Env reads the secret keys from the process environment: the source when
// no secret is named. Its values never change.
type Env struct {
	Getenv func(string) string
	Keys   []string
}

var _ Source = Env{}

// Read returns the non-empty values of the keys.
func (e Env) Read(context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range e.Keys {
		if v := e.Getenv(k); v != "" {
			out[k] = v
		}
	}
	return out, nil
}

// Name is "environment".
func (Env) Name() string { return "environment" }

// GetSecretValueAPI is the one Secrets Manager call used.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManager reads one Secrets Manager secret holding a JSON object of
// string values.
type SecretsManager struct {
	id     string
	client GetSecretValueAPI
}

var (
	_ Source            = (*SecretsManager)(nil)
	_ GetSecretValueAPI = (*secretsmanager.Client)(nil)
)

// NewSecretsManager returns the source of secret id with the SDK's default
// configuration: region and credentials from the environment (on Lambda,
// the function role's), endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER when
// set (local runs and tests).
func NewSecretsManager(ctx context.Context, id string) (*SecretsManager, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("secrets: aws config for secret %q: %w", id, err)
	}
	return NewSecretsManagerFromClient(id, secretsmanager.NewFromConfig(cfg)), nil
}

// NewSecretsManagerFromClient returns the source of secret id read through
// client.
func NewSecretsManagerFromClient(id string, client GetSecretValueAPI) *SecretsManager {
	return &SecretsManager{id: id, client: client}
}

// Name is the secret id.
func (s *SecretsManager) Name() string { return s.id }

// Read fetches the secret's current version and decodes its JSON object.
func (s *SecretsManager) Read(ctx context.Context) (map[string]string, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)})
	if err != nil {
		return nil, fmt.Errorf("secrets: read secret %q: %w", s.id, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("secrets: secret %q has no SecretString (a JSON object of the secret keys is expected)", s.id)
	}
	return decode(s.id, *out.SecretString)
}

// decode parses a JSON object of string values. Its errors never quote
// the text (json's syntax errors would show a character of it).
func decode(id, text string) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(text), &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("secrets: secret %q: SecretString is not a JSON object", id)
	}
	out := make(map[string]string, len(raw))
	var bad []string
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			bad = append(bad, k)
			continue
		}
		out[k] = strings.TrimSpace(s)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("secrets: secret %q: keys %s are not strings", id, strings.Join(sorted(bad), ", "))
	}
	return out, nil
}

// Settings are the package's environment variables.
type Settings struct {
	SecretID string        // "" = the environment
	MaxAge   time.Duration // of a read from Secrets Manager
}

// SettingsFromEnv reads DUEFLOW_SECRET_ID and DUEFLOW_SECRETS_MAX_AGE.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{SecretID: strings.TrimSpace(getenv(EnvSecretID)), MaxAge: DefaultMaxAge}
	if v := strings.TrimSpace(getenv(EnvMaxAge)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxMaxAge {
			return s, fmt.Errorf("secrets: %s %q is not a duration between 0 and %s (e.g. 5m)", EnvMaxAge, v, MaxMaxAge)
		}
		s.MaxAge = d
	}
	return s, nil
}

// Open returns the source the settings name (keys: the secret keys the
// environment source reads) and the max age of its reads (0: never re-read,
// for the environment). ctx bounds loading the SDK's configuration: give it
// the cold start's bound (ColdStartTimeout).
func Open(ctx context.Context, s Settings, getenv func(string) string, keys []string) (Source, time.Duration, error) {
	if s.SecretID == "" {
		return Env{Getenv: getenv, Keys: keys}, 0, nil
	}
	src, err := NewSecretsManager(ctx, s.SecretID)
	if err != nil {
		return nil, 0, err
	}
	return src, s.MaxAge, nil
}
