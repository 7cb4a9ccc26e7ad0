package samtemplate

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/lambdafns"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/secrets"
)

const repoRoot = "../.."

// functionNames are the repository's functions: one per action and
// provider-events.
var functionNames = append(slices.Clone(automation.Actions), "provider-events")

// functionDirs are the directories of functions/: the actions' program
// and provider-events.
var functionDirs = []string{lambdafns.ActionPackage, "provider-events"}

// TestFunctionsListed keeps functionNames in step with functions/.
func TestFunctionsListed(t *testing.T) {
	names, err := lambdafns.Names(repoRoot)
	require.NoError(t, err)
	assert.ElementsMatch(t, functionNames, names)
}

func TestLogicalIDAndOutputKey(t *testing.T) {
	assert.Equal(t, "SendReminderFunction", LogicalID("send-reminder"))
	assert.Equal(t, "InvoiceReminderFunction", LogicalID("invoice-reminder"))
	assert.Equal(t, "RunWorkflowFunction", LogicalID("run-workflow"))
	assert.Equal(t, "RunWorkflowFunctionUrl", OutputKey("run-workflow"))
	a, ok := ActionForOutputKey("InvoiceReminderFunctionUrl", automation.Actions)
	assert.True(t, ok)
	assert.Equal(t, "invoice-reminder", a)
	_, ok = ActionForOutputKey("SomethingElse", automation.Actions)
	assert.False(t, ok)
}

// TestRepositoryIsConsistent is the check that keeps template.yaml, the
// Makefile and functions/ in step.
func TestRepositoryIsConsistent(t *testing.T) {
	names, err := lambdafns.Names(repoRoot)
	require.NoError(t, err)
	require.NotEmpty(t, names, "no functions under functions/")
	for _, err := range Check(context.Background(), repoRoot) {
		t.Error(err)
	}
}

func TestTemplateDeclaresEveryAction(t *testing.T) {
	tmpl, err := Load(filepath.Join(repoRoot, "template.yaml"))
	require.NoError(t, err)
	fns := tmpl.Functions()
	for _, a := range automation.Actions {
		f, ok := fns[LogicalID(a)]
		require.True(t, ok, "no resource for action %s", a)
		assert.Equal(t, WantRuntime, f.Runtime)
		assert.Equal(t, []string{WantArchitecture}, f.Architectures)
		assert.Equal(t, WantHandler, f.Handler)
		assert.Equal(t, WantBuildMethod, f.BuildMethod)
		assert.Equal(t, WantURLAuthType, f.URLAuthType)
		assert.Equal(t, "JSON", f.LoggingConfig["LogFormat"])
		// A batch fits in the timeout; the lease outlives the invocation.
		assert.Equal(t, 60, f.Timeout)
		assert.Equal(t, "300", f.Environment["DUEFLOW_LEASE_SECONDS"])
		assert.Nil(t, f.ReservedConcurrency, "ReservedConcurrency 0 (default) must leave the property unset, not throttle to 0")
		assert.Equal(t, "dueflow", f.Environment["DUEFLOW_SECRET_ID"], "the functions read the secret themselves")
		assert.Equal(t, "5m", f.Environment["DUEFLOW_SECRETS_MAX_AGE"])
		for _, k := range config.SecretKeys {
			_, ok := f.Environment[k]
			assert.False(t, ok, "secret %s in the environment", k)
		}
	}
	_, ok := tmpl.CFN.Parameters["ReservedConcurrency"]
	assert.True(t, ok, "reserved-concurrency parameter")
}

// sandbox is a copy of the repository's template.yaml, Makefile and go.mod
// with the given function directories (each with a trivial main package).
func sandbox(t *testing.T, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range []string{"template.yaml", "Makefile", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, name), b, 0o644))
	}
	for _, d := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(root, lambdafns.Dir, d), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, lambdafns.Dir, d, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	}
	return root
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}

func joined(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

func TestSandboxWithTheActionsIsConsistent(t *testing.T) {
	root := sandbox(t, functionDirs...)
	assert.Empty(t, joined(Check(context.Background(), root)))
}

func TestFunctionWithoutResourceFails(t *testing.T) {
	root := sandbox(t, append([]string{"nightly-digest"}, functionDirs...)...)
	errs := joined(Check(context.Background(), root))
	assert.Contains(t, errs, "function nightly-digest has no AWS::Serverless::Function NightlyDigestFunction in template.yaml")
	assert.NotContains(t, errs, "Makefile", "the Makefile names the new function's target itself")
	out, err := MakeDryRun(context.Background(), root, "build-NightlyDigestFunction", "ARTIFACTS_DIR=/a")
	require.NoError(t, err)
	assert.Contains(t, out, "-o /a/bootstrap ./functions/nightly-digest")
}

func TestResourceWithoutFunctionDirectoryFails(t *testing.T) {
	root := sandbox(t, "provider-events") // no functions/action: no action function
	errs := joined(Check(context.Background(), root))
	assert.Contains(t, errs, "template.yaml declares InvoiceReminderFunction but the repository has no function of that name (lambdafns.Names)")
}

func TestMissingMakeTargetFails(t *testing.T) {
	root := sandbox(t, functionDirs...)
	editFile(t, filepath.Join(root, "Makefile"), "$(foreach d,$(LAMBDA_NAMES),$(eval $(call lambda_target,$(d))))", "")
	errs := joined(Check(context.Background(), root))
	assert.Contains(t, errs, "Makefile: target build-SendReminderFunction")
	assert.Contains(t, errs, "No rule to make target")
}

func TestBuildTargetWithoutLambdaFlagsFails(t *testing.T) {
	root := sandbox(t, functionDirs...)
	editFile(t, filepath.Join(root, "Makefile"), "CGO_ENABLED=0 ", "")
	assert.Contains(t, joined(Check(context.Background(), root)), `does not use "CGO_ENABLED=0"`)
}

func TestWrongPropertiesFail(t *testing.T) {
	cases := map[string]templateEdit{
		"architecture":     {"Architectures: [arm64]", "Architectures: [x86_64]", "Architectures [x86_64], want [arm64]"},
		"runtime":          {"Runtime: provided.al2023", "Runtime: go1.x", `Runtime "go1.x"`},
		"url auth":         {"AuthType: NONE", "AuthType: AWS_IAM", `FunctionUrlConfig.AuthType "AWS_IAM"`},
		"build method":     {"BuildMethod: makefile\n    Properties:\n      Description: \"dueflow send-reminder", "BuildMethod: go1.x\n    Properties:\n      Description: \"dueflow send-reminder", `SendReminderFunction: Metadata.BuildMethod "go1.x"`},
		"log format":       {"LogFormat: JSON\n        LogGroup: !Ref RunWorkflowLogGroup", "LogFormat: Text\n        LogGroup: !Ref RunWorkflowLogGroup", "RunWorkflowFunction: LoggingConfig.LogFormat Text"},
		"output":           {"Value: !GetAtt RunWorkflowFunctionUrl.FunctionUrl", "Value: !GetAtt SendReminderFunctionUrl.FunctionUrl", "output RunWorkflowFunctionUrl"},
		"nested condition": {`HasKmsKey: !Not [!Equals [!Ref KmsKeyArn, ""]]`, `HasKmsKey: !And [!Condition HasReservedConcurrency, !Not [!Equals [!Ref KmsKeyArn, ""]]]`, "short-form tag !Condition is not understood by goformation"},
		"unknown prop":     {"Description: \"dueflow run-workflow", "Handlr: bootstrap\n      Description: \"dueflow run-workflow", "decode template"},
		"action":           {"DUEFLOW_ACTION: run-workflow", "DUEFLOW_ACTION: send-reminder", `RunWorkflowFunction: DUEFLOW_ACTION "send-reminder", want "run-workflow"`},
		"timeout drift":    {"    Timeout: 60\n", "    Timeout: 120\n", `SendReminderFunction: DUEFLOW_FUNCTION_TIMEOUT "60s", want "120s"`},
	}
	assertEditsReported(t, cases)
}

// templateEdit replaces old by new in template.yaml; Check must then report want.
type templateEdit struct{ old, new, want string }

// assertEditsReported applies each edit to a sandbox copy of the project (in
// parallel) and asserts that Check reports it.
func assertEditsReported(t *testing.T, cases map[string]templateEdit) {
	t.Helper()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := sandbox(t, functionDirs...)
			editFile(t, filepath.Join(root, "template.yaml"), c.old, c.new)
			assert.Contains(t, joined(Check(context.Background(), root)), c.want)
		})
	}
}

const secretIDLine = "        DUEFLOW_SECRET_ID: !Ref SecretName\n"

func TestLiteralSecretsFail(t *testing.T) {
	cases := map[string]templateEdit{
		"literal webhook secret": {
			secretIDLine,
			secretIDLine + "        DUEFLOW_WEBHOOK_SECRET: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
			"secret DUEFLOW_WEBHOOK_SECRET must not be in the environment",
		},
		"dynamic reference, as before": {
			secretIDLine,
			secretIDLine + `        SUPABASE_SERVICE_ROLE_KEY: !Sub "{{resolve:secretsmanager:${SecretName}:SecretString:SUPABASE_SERVICE_ROLE_KEY}}"` + "\n",
			"SUPABASE_SERVICE_ROLE_KEY holds a {{resolve:secretsmanager:...}} dynamic reference",
		},
		"dynamic reference under another name": {
			secretIDLine,
			secretIDLine + `        SMTP_CREDENTIALS: "{{resolve:secretsmanager:prod:SecretString:SMTP_PASSWORD}}"` + "\n",
			"SMTP_CREDENTIALS holds a {{resolve:secretsmanager:...}} dynamic reference",
		},
		"secret id not a parameter": {
			secretIDLine,
			"        DUEFLOW_SECRET_ID: prod-secret\n",
			"DUEFLOW_SECRET_ID must be !Ref of the template parameter",
		},
		"no secret id": {
			secretIDLine, "", "environment variable DUEFLOW_SECRET_ID is not set",
		},
		"secret parameter with default": {
			"  SupabaseUrl:\n",
			"  ServiceRoleKey:\n    Type: String\n    Default: eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.x\n  SupabaseUrl:\n",
			"parameter ServiceRoleKey looks like a secret value",
		},
	}
	assertEditsReported(t, cases)
}

// The functions may read their one secret and nothing else.
func TestSecretPolicyIsNarrow(t *testing.T) {
	cases := map[string]templateEdit{
		"every secret": {
			`secret:${SecretName}-??????"`, `secret:*"`,
			"statement 0 must allow only secretsmanager:GetSecretValue",
		},
		"more actions": {
			"Action: secretsmanager:GetSecretValue", "Action: secretsmanager:*",
			"statement 0 must allow only secretsmanager:GetSecretValue",
		},
		"kms without condition": {
			"              Resource: !Ref KmsKeyArn\n              Condition:\n                StringEquals:\n                  kms:ViaService: !Sub \"secretsmanager.${AWS::Region}.amazonaws.com\"\n",
			"              Resource: !Ref KmsKeyArn\n",
			"the conditional statement must allow only kms:Decrypt",
		},
		"function without the policy": {
			"      Policies: [!Ref SecretReadPolicy]\n      Environment:\n        Variables:\n          DUEFLOW_ACTION: run-workflow",
			"      Environment:\n        Variables:\n          DUEFLOW_ACTION: run-workflow",
			"RunWorkflowFunction: Policies must be [!Ref <the secret-reading AWS::IAM::ManagedPolicy>]",
		},
		"broader managed policy": {
			"      Policies: [!Ref SecretReadPolicy]\n      Environment:\n        Variables:\n          DUEFLOW_ACTION: run-workflow",
			"      Policies: [!Ref SecretReadPolicy, SecretsManagerReadWrite]\n      Environment:\n        Variables:\n          DUEFLOW_ACTION: run-workflow",
			"RunWorkflowFunction: Policies must be",
		},
	}
	assertEditsReported(t, cases)
}

// TestCfnLint runs cfn-lint (AWS CloudFormation Linter) on template.yaml:
// it knows the resource specifications, SAM's transform and the IAM policy
// grammar, which goformation does not check.
func TestCfnLint(t *testing.T) {
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		path = "/root/.pyenv/shims/cfn-lint"
		if _, statErr := os.Stat(path); statErr != nil {
			t.Fatalf("cfn-lint is not installed (not on PATH, not at %s): install it with `pip install cfn-lint` (1.51 or later), then run the tests again", path)
		}
	}
	cmd := exec.CommandContext(t.Context(), path, "--format", "parseable", "template.yaml")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cfn-lint template.yaml:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "cfn-lint template.yaml reports nothing")
}

// buildWithMake runs `make build-<LogicalId>` (what sam build runs) for each
// directory into a temporary ARTIFACTS_DIR and returns the bootstrap paths.
// The first build runs alone (it fills the build cache with the shared
// dependencies), the others in parallel.
func buildWithMake(t *testing.T, root string, dirs []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var mu sync.Mutex
	build := func(d, art string) {
		cmd := exec.Command("make", "--no-print-directory", "-C", root, "build-"+LogicalID(d), "ARTIFACTS_DIR="+art)
		cmd.Env = append(os.Environ(), "MAKEFLAGS=")
		b, err := cmd.CombinedOutput()
		mu.Lock()
		defer mu.Unlock()
		assert.NoError(t, err, "make build-%s: %s", LogicalID(d), b)
	}
	var wg sync.WaitGroup
	for i, d := range dirs {
		art := filepath.Join(t.TempDir(), d)
		out[d] = filepath.Join(art, "bootstrap")
		if i == 0 {
			build(d, art)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			build(d, art)
		}()
	}
	wg.Wait()
	return out
}

// TestBuildTargetMakesStaticArm64Bootstrap checks the Makefile recipe on a
// trivial main package, independently of the real functions.
func TestBuildTargetMakesStaticArm64Bootstrap(t *testing.T) {
	root := sandbox(t, "probe")
	for _, p := range buildWithMake(t, root, []string{"probe"}) {
		require.NoError(t, CheckBootstrap(p))
	}
}

// TestFunctionBootstrapsAreStaticArm64 builds every function of the
// repository with its build-<LogicalId> target and inspects the ELF file.
func TestFunctionBootstrapsAreStaticArm64(t *testing.T) {
	names, err := lambdafns.Names(repoRoot)
	require.NoError(t, err)
	require.NotEmpty(t, names, "no functions to build")
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	for d, p := range buildWithMake(t, root, names) {
		assert.NoError(t, CheckBootstrap(p), d)
	}
}

func TestCheckBootstrapRejectsHostBinary(t *testing.T) {
	// The test binary itself: dynamically linked or not arm64 or not
	// stripped; any of those must be refused.
	exe, err := os.Executable()
	require.NoError(t, err)
	assert.Error(t, CheckBootstrap(exe))
}

// TestTemplateEnvironmentLoadsConfig feeds the environment the template
// gives the functions, with the secret's keys for each provider choice
// overlaid (as the functions do after reading it), to shared/config: every
// name the functions read is set, under the right name.
func TestTemplateEnvironmentLoadsConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	require.NoError(t, err)
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"role":"service_role"}`)) + ".c2ln"
	always := map[string]string{
		"SUPABASE_SERVICE_ROLE_KEY": jwt,
		"DUEFLOW_WEBHOOK_SECRET":    "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
	}
	base := map[string]any{"SupabaseUrl": "https://abcd.supabase.co", "EmailFrom": "reminders@example.com"}
	cases := map[string]struct {
		params map[string]any
		secret map[string]string
	}{
		"smtp, no sms":   {map[string]any{"SmtpHost": "email-smtp.eu-west-1.amazonaws.com", "SmtpUsername": "AKIA"}, map[string]string{"SMTP_PASSWORD": "smtp-password"}},
		"smtp no auth":   {map[string]any{"SmtpHost": "relay.internal"}, nil},
		"mailgun twilio": {map[string]any{"EmailProvider": "mailgun", "MailgunDomain": "mg.example.com", "SmsProvider": "twilio", "TwilioAccountSid": "AC0123456789abcdef0123456789abcdef", "SmsFrom": "+15550100"}, map[string]string{"MAILGUN_API_KEY": "mailgun-key", "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef"}},
		"smtp telnyx":    {map[string]any{"SmtpHost": "smtp.example.com", "SmsProvider": "telnyx", "SmsFrom": "+15550100"}, map[string]string{"TELNYX_API_KEY": "KEY0123456789ABCDEF"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			all := map[string]any{}
			for k, v := range base {
				all[k] = v
			}
			for k, v := range c.params {
				all[k] = v
			}
			secret := map[string]string{}
			for k, v := range always {
				secret[k] = v
			}
			for k, v := range c.secret {
				secret[k] = v
			}
			tmpl, err := ParseWithParameters(data, all)
			require.NoError(t, err)
			for id, f := range tmpl.Functions() {
				getenv, err := config.Overlay(func(k string) string { return f.Environment[k] }, secret)
				require.NoError(t, err, id)
				if id == LogicalID("provider-events") {
					// provider-events receives what one of its keys verifies
					getenv, err := config.Overlay(getenv, map[string]string{config.EnvMailgunSigningKey: "mailgun-signing-key"})
					require.NoError(t, err, id)
					ev, err := config.LoadEvents(getenv)
					require.NoError(t, err, id)
					assert.Equal(t, "https://abcd.supabase.co", ev.SupabaseURL, id)
					continue
				}
				cfg, err := config.Load(getenv)
				require.NoError(t, err, id)
				assert.Equal(t, id, LogicalID(cfg.Action), "the function runs its own action")
				assert.Equal(t, "https://abcd.supabase.co", cfg.SupabaseURL, id)
				assert.Equal(t, 300, cfg.LeaseSeconds, id)
				assert.Equal(t, time.Duration(f.Timeout)*time.Second, cfg.FunctionTimeout, id)
				assert.Equal(t, 8, cfg.Concurrency, id)
				settings, err := secrets.SettingsFromEnv(func(k string) string { return f.Environment[k] })
				require.NoError(t, err, id)
				assert.Equal(t, secrets.Settings{SecretID: "dueflow", MaxAge: 5 * time.Minute}, settings, id)
			}
		})
	}
}

// The template's header names every key the Secrets Manager secret may
// hold (config.SecretKeys).
func TestHeaderNamesEverySecretKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	require.NoError(t, err)
	header, _, ok := strings.Cut(string(data), "\nParameters:")
	require.True(t, ok)
	for _, k := range config.SecretKeys {
		assert.Contains(t, header, k, "template.yaml's header comment does not list the secret key %s", k)
	}
}

// SecretsMaxAge's AllowedPattern accepts exactly the whole-unit durations
// the functions accept (secrets.SettingsFromEnv): a value CloudFormation
// lets through must not fail every cold start.
func TestSecretsMaxAgePatternMatchesFunctions(t *testing.T) {
	tmpl, err := Load(filepath.Join(repoRoot, "template.yaml"))
	require.NoError(t, err)
	p, ok := tmpl.CFN.Parameters["SecretsMaxAge"]
	require.True(t, ok)
	require.NotNil(t, p.AllowedPattern)
	re := regexp.MustCompile(*p.AllowedPattern)
	accepts := func(v string) bool {
		_, err := secrets.SettingsFromEnv(func(k string) string {
			if k == secrets.EnvMaxAge {
				return v
			}
			return ""
		})
		return err == nil
	}
	for unit, limit := range map[string]int{"s": 86400, "m": 1440, "h": 24} {
		for n := 0; n <= limit+limit/10+2; n++ {
			v := fmt.Sprintf("%d%s", n, unit)
			if re.MatchString(v) != accepts(v) {
				t.Errorf("SecretsMaxAge %q: template pattern says %v, the functions %v", v, re.MatchString(v), accepts(v))
			}
		}
	}
	for _, v := range []string{"", "5", "05m", "1d", "1h30m", "-5m", "5M"} {
		assert.False(t, re.MatchString(v), v)
	}
	assert.Regexp(t, re, p.Default, "the default matches")
}

// TestTemplateEnvironmentLoadsEventsConfig: the provider-events function
// starts with the template's environment and a secret holding its keys.
func TestTemplateEnvironmentLoadsEventsConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	require.NoError(t, err)
	tmpl, err := ParseWithParameters(data, map[string]any{"SupabaseUrl": "https://abcd.supabase.co", "EmailFrom": "reminders@example.com",
		"PublicUrl": "https://events.example.com"})
	require.NoError(t, err)
	f, ok := tmpl.Functions()[LogicalID("provider-events")]
	require.True(t, ok)
	assert.Equal(t, 15, f.Timeout)
	secret := map[string]string{
		"SUPABASE_SECRET_KEY":      "sb_secret_0123456789abcdefghij",
		"DUEFLOW_UNSUBSCRIBE_KEYS": base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"TELNYX_PUBLIC_KEY":        base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
	getenv, err := config.Overlay(func(k string) string { return f.Environment[k] }, secret)
	require.NoError(t, err)
	cfg, err := config.LoadEvents(getenv)
	require.NoError(t, err)
	assert.Equal(t, "https://events.example.com", cfg.PublicURL)
	assert.Len(t, cfg.UnsubscribeKeys, 1)
}

// Every function has its three alarms, notifying the optional topic, and a
// dashboard row; a drift in any of them is reported.
func TestAlarmsAndDashboardDriftFails(t *testing.T) {
	cases := map[string]templateEdit{
		"duration threshold": {"Threshold: 48000\n", "Threshold: 60000\n", "SendReminderDurationAlarm: Threshold 60000, want 48000"},
		"timeout changed":    {"    Timeout: 60\n", "    Timeout: 120\n", "SendReminderDurationAlarm: Threshold 48000, want 96000"},
		"metric":             {"MetricName: Throttles", "MetricName: Errors", `SendReminderThrottlesAlarm: MetricName "Errors", want "Throttles"`},
		"dimension":          {"Dimensions: [{Name: FunctionName, Value: !Ref RunWorkflowFunction}]", "Dimensions: [{Name: FunctionName, Value: !Ref SendReminderFunction}]", `RunWorkflowErrorsAlarm: Dimensions`},
		"actions":            {"AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]", "AlarmActions: [!Ref AlarmTopicArn]", "SendReminderErrorsAlarm: AlarmActions"},
		"statistic":          {"ExtendedStatistic: p99", "Statistic: Average", "SendReminderDurationAlarm: statistic Average/<nil>"},
		"condition":          {`HasAlarmTopic: !Not [!Equals [!Ref AlarmTopicArn, ""]]`, `HasAlarmTopic: !Equals [!Ref AlarmTopicArn, ""]`, "condition HasAlarmTopic"},
		"missing alarm":      {"  InvoiceReminderThrottlesAlarm:\n    Type: AWS::CloudWatch::Alarm", "  InvoiceReminderThrottlesAlarmX:\n    Type: AWS::CloudWatch::Alarm", "InvoiceReminderFunction has no alarm InvoiceReminderThrottlesAlarm"},
		"row text drift":     {`"title":"${Name}: throttles"`, `"title":"${Name}: throttled"`, "Dashboard: row 1's text differs from the first row's"},
		"row missing":        {"{Fn: !Ref RunWorkflowFunction, Name: run-workflow, Y: \"12\"", "{Fn: !Ref InvoiceReminderFunction, Name: run-workflow, Y: \"12\"", "RunWorkflowFunction has no row in the Dashboard"},
		"row overlap":        {`Name: run-workflow, Y: "12"`, `Name: run-workflow, Y: "6"`, "Dashboard: two widgets at x=0 y=6"},
	}
	assertEditsReported(t, cases)
}

// A new function (say job-follow-up) without alarms or a dashboard row is
// reported with what to add.
func TestNewFunctionNeedsAlarmsAndARow(t *testing.T) {
	root := sandbox(t, append([]string{"job-follow-up", "job-follow-up"}, automation.Actions...)...)
	editFile(t, filepath.Join(root, "template.yaml"), "\n  # One dashboard row per function", `
  JobFollowUpFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      Description: "dueflow job-follow-up"
      CodeUri: .
      Policies: [!Ref SecretReadPolicy]
      LoggingConfig:
        LogFormat: JSON

  # One dashboard row per function`)
	editFile(t, filepath.Join(root, "template.yaml"), "\nOutputs:\n", `
Outputs:
  JobFollowUpFunctionUrl:
    Description: Function URL of action job-follow-up
    Value: !GetAtt JobFollowUpFunctionUrl.FunctionUrl
`)
	errs := joined(Check(context.Background(), root))
	for _, want := range []string{
		"JobFollowUpFunction has no alarm JobFollowUpErrorsAlarm",
		"JobFollowUpFunction has no alarm JobFollowUpThrottlesAlarm",
		"JobFollowUpFunction has no alarm JobFollowUpDurationAlarm",
		"JobFollowUpFunction has no row in the Dashboard",
	} {
		assert.Contains(t, errs, want)
	}
	assert.NotContains(t, errs, "SendReminder")
}
