package function

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/postgrest"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/notify/senders"
	"github.com/dueflow/dueflow/shared/supabase"
	"github.com/dueflow/dueflow/shared/webhook"
)

func validEnv(t testing.TB) map[string]string {
	t.Helper()
	key, err := postgrest.SignJWT("local-jwt-secret-local-jwt-secret-0000", "service_role", 0)
	require.NoError(t, err)
	return map[string]string{
		"DUEFLOW_ACTION":            automation.ActionInvoiceReminder,
		"SUPABASE_URL":              "http://127.0.0.1:54321",
		"SUPABASE_SERVICE_ROLE_KEY": key,
		"DUEFLOW_WEBHOOK_SECRET":    "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"EMAIL_PROVIDER":            "smtp",
		"EMAIL_FROM":                "noreply@dueflow.test",
		"SMTP_HOST":                 "127.0.0.1",
		"SMTP_PORT":                 "54325",
		"SMTP_TLS":                  "none",
		"SMS_PROVIDER":              "telnyx",
		"TELNYX_API_KEY":            "KEY",
		"SMS_FROM":                  "+15555550100",
		"TELNYX_API_BASE":           "http://127.0.0.1:54326",
	}
}

// actionBuilder wires an action's handler as functions/action/main.go
// does (a main package cannot be imported), for the tests that run a
// function in this process; DUEFLOW_ACTION reads action.
func actionBuilder(action string) Builder {
	return func(getenv func(string) string, log *slog.Logger) (Built, error) {
		cfg, err := config.Load(func(k string) string {
			if k == config.EnvAction {
				return action
			}
			return getenv(k)
		})
		if err != nil {
			return Built{}, err
		}
		store, err := supabase.New(supabase.Config{URL: cfg.SupabaseURL, Key: cfg.ServiceRoleKey.Value(), Timeout: cfg.RPCTimeout})
		if err != nil {
			return Built{}, err
		}
		email, sms, err := senders.FromConfig(cfg)
		if err != nil {
			return Built{}, err
		}
		closeSenders := func() { senders.Close(email, sms) }
		eng, err := engine.New(EngineOptions(cfg, store, email, sms, log))
		if err != nil {
			closeSenders()
			return Built{}, err
		}
		v, err := webhook.NewVerifier(cfg.WebhookSecret.Value(), action, webhook.WithMaxBodyBytes(cfg.MaxBodyBytes), webhook.WithMaxIDs(cfg.MaxIDs))
		if err != nil {
			closeSenders()
			return Built{}, err
		}
		return Built{Handler: lambdaurl.New(v, eng, log), LogLevel: cfg.LogLevel, Close: closeSenders, Config: cfg}, nil
	}
}

func TestBuildEveryAction(t *testing.T) {
	env := validEnv(t)
	for _, a := range automation.Actions {
		b, err := actionBuilder(a)(func(k string) string { return env[k] }, Logger(io.Discard, 0))
		require.NoError(t, err, a)
		require.NotNil(t, b.Handler)
		assert.Equal(t, config.SMSTelnyx, b.Config.SMSProvider)
		b.Close()
	}
	_, err := actionBuilder("no-such-action")(func(k string) string { return env[k] }, Logger(io.Discard, 0))
	assert.ErrorContains(t, err, `DUEFLOW_ACTION "no-such-action" is not one of send-reminder, invoice-reminder, run-workflow`, "the setting is named")
}

// buildBinary builds the actions' function (functions/action) for the host.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "../../functions/action")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// A cold start with a bad configuration exits at once, naming every problem,
// and never prints a secret.
func TestColdStartConfigErrorExits(t *testing.T) {
	bin := buildBinary(t)
	env := validEnv(t)
	delete(env, "SUPABASE_URL")
	delete(env, "SMTP_HOST")
	env["SMTP_PORT"] = "abc"
	cmd := exec.Command(bin)
	cmd.Env = environ(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	msg := stderr.String()
	assert.Contains(t, msg, "invoice-reminder: config: 3 problems: SUPABASE_URL is required; SMTP_HOST is required; SMTP_PORT \"abc\" is not a number")
	assert.NotContains(t, msg, env["SUPABASE_SERVICE_ROLE_KEY"])
}

// BenchmarkInit is the cold-start path inside the process: configuration
// read, adapter, senders, engine and verifier built.
func BenchmarkInit(b *testing.B) {
	env := validEnv(b)
	getenv := func(k string) string { return env[k] }
	build := actionBuilder(automation.ActionInvoiceReminder)
	for b.Loop() {
		if _, err := build(getenv, Logger(io.Discard, 0)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart is process start to "function ready" (handler built,
// about to enter the Lambda runtime loop) of the real binary.
func BenchmarkColdStart(b *testing.B) { coldStart(b, validEnv(b)) }

func coldStart(b *testing.B, vars map[string]string) {
	bin := buildBinary(b)
	env := environ(vars)
	var initMS float64
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bin)
		cmd.Env = env
		stdout, err := cmd.StdoutPipe()
		require.NoError(b, err)
		require.NoError(b, cmd.Start())
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "function ready") {
				var line struct {
					InitMS float64 `json:"init_ms"`
				}
				_ = json.Unmarshal(sc.Bytes(), &line)
				initMS += line.InitMS
				ready = true
				break
			}
		}
		b.StopTimer()
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		require.True(b, ready, "no ready line")
		b.StartTimer()
	}
	b.ReportMetric(initMS/float64(b.N), "init-ms")
}
