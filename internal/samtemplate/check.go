package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/dueflow/dueflow/internal/lambdafns"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
)

// Expected settings of every function (see template.yaml for the reasons).
const (
	WantRuntime      = "provided.al2023"
	WantArchitecture = "arm64"
	WantHandler      = "bootstrap"
	WantBuildMethod  = "makefile"
	WantURLAuthType  = "NONE"
	WantLogFormat    = "JSON"
)

// secretName matches the environment variables that carry a secret.
var secretName = regexp.MustCompile(`(KEY|SECRET|TOKEN|PASSWORD)$`)

// IsSecretVariable reports whether an environment variable name carries a
// secret (…_KEY, …_SECRET, …_TOKEN, …_PASSWORD).
func IsSecretVariable(name string) bool { return secretName.MatchString(name) }

// literalSecret matches strings that look like a secret value written into
// the template: a Standard Webhooks key, a JWT, provider key shapes.
var literalSecret = regexp.MustCompile(`whsec_|eyJ[A-Za-z0-9_-]{10,}|\bkey-[0-9a-f]{16,}|\bKEY[0-9A-F]{20,}|\bSK[0-9a-f]{32}\b`)

// Check verifies the repository at root: template.yaml against its
// functions (lambdafns.Names), the secrets rule and the Makefile's build
// targets.
// It returns every problem found (nil when all is well).
func Check(ctx context.Context, root string) []error {
	t, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return []error{err}
	}
	dirs, err := lambdafns.Names(root)
	if err != nil {
		return []error{err}
	}
	errs := CheckTemplate(t, dirs)
	errs = append(errs, CheckMakeTargets(ctx, root, dirs)...)
	return errs
}

// CheckTemplate verifies a parsed template against the functions dirs
// (lambdafns.Names).
//
// Long: the list of template checks, one line each
func CheckTemplate(t *Template, dirs []string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	fns := t.Functions()
	want := map[string]string{}
	for _, d := range dirs {
		want[LogicalID(d)] = d
	}
	for _, d := range dirs {
		id := LogicalID(d)
		f, ok := fns[id]
		if !ok {
			fail("function %s has no AWS::Serverless::Function %s in template.yaml", d, id)
			continue
		}
		if f.Runtime != WantRuntime {
			fail("%s: Runtime %q, want %q", id, f.Runtime, WantRuntime)
		}
		if len(f.Architectures) != 1 || f.Architectures[0] != WantArchitecture {
			fail("%s: Architectures %v, want [%s]", id, f.Architectures, WantArchitecture)
		}
		if f.Handler != WantHandler {
			fail("%s: Handler %q, want %q", id, f.Handler, WantHandler)
		}
		if f.BuildMethod != WantBuildMethod {
			fail("%s: Metadata.BuildMethod %q, want %q", id, f.BuildMethod, WantBuildMethod)
		}
		if f.URLAuthType != WantURLAuthType {
			fail("%s: FunctionUrlConfig.AuthType %q, want %q (requests are authenticated by their Standard Webhooks signature)", id, f.URLAuthType, WantURLAuthType)
		}
		if f.LoggingConfig["LogFormat"] != WantLogFormat {
			fail("%s: LoggingConfig.LogFormat %v, want %s", id, f.LoggingConfig["LogFormat"], WantLogFormat)
		}
		if f.Timeout <= 0 || f.Timeout > 900 {
			fail("%s: Timeout %d s, want 1..900", id, f.Timeout)
		}
		if f.MemorySize < 128 {
			fail("%s: MemorySize %d MB, want >= 128", id, f.MemorySize)
		}
		if f.CodeURI != "." {
			fail("%s: CodeUri %q, want \".\" (the Makefile's directory)", id, f.CodeURI)
		}
		if want := fmt.Sprintf("%ds", f.Timeout); f.Environment["DUEFLOW_FUNCTION_TIMEOUT"] != want {
			fail("%s: DUEFLOW_FUNCTION_TIMEOUT %q, want %q (= Timeout: the functions check their lease against it)", id, f.Environment["DUEFLOW_FUNCTION_TIMEOUT"], want)
		}
		if automation.IsAction(d) && f.Environment[config.EnvAction] != d {
			fail("%s: %s %q, want %q (functions/action runs the action it names)", id, config.EnvAction, f.Environment[config.EnvAction], d)
		}
		checkEnvironment(t, f, fail)
		checkOutput(t, d, fail)
		checkAlarms(t, d, f, fail)
	}
	for id := range fns {
		if _, ok := want[id]; !ok {
			fail("template.yaml declares %s but the repository has no function of that name (lambdafns.Names)", id)
		}
	}
	checkParameters(t, fail)
	checkAlarmTopic(t, fail)
	checkDashboard(t, dirs, fns, fail)
	checkSecretPolicy(t, fail)
	checkLiterals(t.Raw, "", fail)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// requiredVariables are the configuration names every function reads
// (shared/config, shared/secrets); the template must set them all. The
// secret keys (config.SecretKeys) are not among them: the functions read
// them from the Secrets Manager secret DUEFLOW_SECRET_ID names.
var requiredVariables = []string{
	"SUPABASE_URL", "DUEFLOW_SECRET_ID", "DUEFLOW_SECRETS_MAX_AGE",
	"EMAIL_PROVIDER", "EMAIL_FROM", "SMS_PROVIDER",
	"DUEFLOW_CONCURRENCY", "DUEFLOW_LEASE_SECONDS", "DUEFLOW_FUNCTION_TIMEOUT", "LOG_LEVEL",
}

// dynamicSecretRef is how CloudFormation would put a secret's value into
// the configuration: never in a function's environment.
const dynamicSecretRef = "resolve:secretsmanager"

func checkEnvironment(t *Template, f *Function, fail func(string, ...any)) {
	for _, name := range requiredVariables {
		if _, ok := f.Environment[name]; !ok {
			fail("%s: environment variable %s is not set", f.LogicalID, name)
		}
	}
	params, _ := t.Raw["Parameters"].(map[string]any)
	for name, v := range t.RawEnvironment(f.LogicalID) {
		if IsSecretVariable(name) {
			fail("%s: secret %s must not be in the environment (readable with the function configuration, stale after a rotation): make it a key of the Secrets Manager secret", f.LogicalID, name)
		}
		if b, _ := json.Marshal(v); strings.Contains(string(b), dynamicSecretRef) {
			fail("%s: environment variable %s holds a {{%s:...}} dynamic reference: the functions read the secret themselves", f.LogicalID, name, dynamicSecretRef)
		}
		if name == "DUEFLOW_SECRET_ID" {
			if p, ok := refParameter(v); !ok || params[p] == nil {
				fail("%s: DUEFLOW_SECRET_ID must be !Ref of the template parameter naming the secret, got %v", f.LogicalID, v)
			}
		}
	}
}

// refParameter returns the name in {"Ref": name}.
func refParameter(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// secretStatementResource is the only resource a function may read from
// Secrets Manager: the secret DUEFLOW_SECRET_ID names (its ARN with the
// random suffix Secrets Manager adds).
const secretStatementResource = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${%s}-??????"

// checkSecretPolicy verifies that every function's policies are exactly
// [!Ref <one AWS::IAM::ManagedPolicy>] and that this policy allows
// secretsmanager:GetSecretValue on the secret DUEFLOW_SECRET_ID names and
// nothing else, except kms:Decrypt on the KmsKeyArn parameter's key under
// a condition (!If [<condition>, statement, !Ref AWS::NoValue]).
//
// Long: walks the IAM policy document statement by statement against the rule in its doc comment
func checkSecretPolicy(t *Template, fail func(string, ...any)) {
	res, _ := t.Raw["Resources"].(map[string]any)
	var policy string
	var secretParam string
	for id, r := range res {
		rm, _ := r.(map[string]any)
		if rm["Type"] != "AWS::Serverless::Function" {
			continue
		}
		props, _ := rm["Properties"].(map[string]any)
		pols, _ := props["Policies"].([]any)
		var ref string
		if len(pols) == 1 {
			ref, _ = refParameter(pols[0])
		}
		if ref == "" {
			fail("%s: Policies must be [!Ref <the secret-reading AWS::IAM::ManagedPolicy>], got %v", id, props["Policies"])
			continue
		}
		if policy != "" && ref != policy {
			fail("%s: Policies refers to %s, the other functions to %s", id, ref, policy)
		}
		policy = ref
		if p, ok := refParameter(t.RawEnvironment(id)["DUEFLOW_SECRET_ID"]); ok {
			secretParam = p
		}
	}
	if policy == "" {
		return
	}
	pr, _ := res[policy].(map[string]any)
	if pr["Type"] != "AWS::IAM::ManagedPolicy" {
		fail("policy %s: Type %v, want AWS::IAM::ManagedPolicy", policy, pr["Type"])
		return
	}
	props, _ := pr["Properties"].(map[string]any)
	doc, _ := props["PolicyDocument"].(map[string]any)
	stmts, _ := doc["Statement"].([]any)
	wantResource := fmt.Sprintf(secretStatementResource, secretParam)
	readsSecret := false
	for i, st := range stmts {
		sm, _ := st.(map[string]any)
		if cond, ok := sm["Fn::If"].([]any); ok && len(cond) == 3 {
			if no, _ := refParameter(cond[2]); no != "AWS::NoValue" {
				fail("policy %s: statement %d: !If must leave the statement out (!Ref AWS::NoValue) when false", policy, i)
			}
			inner, _ := cond[1].(map[string]any)
			res, _ := refParameter(inner["Resource"])
			if inner["Effect"] != "Allow" || inner["Action"] != "kms:Decrypt" || res != "KmsKeyArn" || inner["Condition"] == nil {
				fail("policy %s: statement %d: the conditional statement must allow only kms:Decrypt on !Ref KmsKeyArn with a kms:ViaService condition, got %v", policy, i, inner)
			}
			continue
		}
		sub, _ := sm["Resource"].(map[string]any)
		if sm["Effect"] != "Allow" || sm["Action"] != "secretsmanager:GetSecretValue" || sub["Fn::Sub"] != wantResource {
			fail("policy %s: statement %d must allow only secretsmanager:GetSecretValue on !Sub %q (the secret DUEFLOW_SECRET_ID names), got %v", policy, i, wantResource, sm)
			continue
		}
		readsSecret = true
	}
	if !readsSecret {
		fail("policy %s does not allow secretsmanager:GetSecretValue on the secret: the functions cannot start", policy)
	}
}

func checkOutput(t *Template, dir string, fail func(string, ...any)) {
	key := OutputKey(dir)
	out, ok := t.CFN.Outputs[key]
	if !ok {
		fail("template.yaml has no output %s (the Function URL of %s)", key, dir)
		return
	}
	// !GetAtt X.Y (a string) or Fn::GetAtt: [X, Y] (a list).
	want := LogicalID(dir) + "Url.FunctionUrl"
	var got string
	if m, ok := out.Value.(map[string]any); ok {
		switch v := m["Fn::GetAtt"].(type) {
		case string:
			got = v
		case []any:
			if len(v) == 2 {
				got = fmt.Sprintf("%v.%v", v[0], v[1])
			}
		}
	}
	if got != want {
		fail("output %s: Value %v, want !GetAtt %sUrl.FunctionUrl", key, out.Value, LogicalID(dir))
	}
}

func checkParameters(t *Template, fail func(string, ...any)) {
	for name, p := range t.CFN.Parameters {
		lower := strings.ToLower(name)
		if strings.Contains(lower, "secret") && name != "SecretName" && name != "SecretsMaxAge" ||
			strings.Contains(lower, "password") || strings.Contains(lower, "token") || strings.HasSuffix(lower, "key") {
			fail("parameter %s looks like a secret value: secrets come from Secrets Manager (SecretName), never parameters", name)
		}
		if p.Default != nil {
			if s, ok := p.Default.(string); ok && literalSecret.MatchString(s) {
				fail("parameter %s has a default that looks like a secret", name)
			}
		}
	}
}

// checkLiterals walks the raw template for strings that look like a secret.
func checkLiterals(v any, path string, fail func(string, ...any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			checkLiterals(c, path+"/"+k, fail)
		}
	case []any:
		for i, c := range x {
			checkLiterals(c, fmt.Sprintf("%s/%d", path, i), fail)
		}
	case string:
		if literalSecret.MatchString(x) {
			fail("%s: literal value looks like a secret", path)
		}
	}
}

// buildFlags must appear in every build-<LogicalId> recipe.
var buildFlags = []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "-tags lambda.norpc", "-trimpath", "-s -w"}

// CheckMakeTargets verifies, with `make -n`, that the Makefile at root has a
// build-<LogicalId> target for every function that builds its package
// (lambdafns.Package) into
// $(ARTIFACTS_DIR)/bootstrap with the Lambda flags, a build target that
// builds them all into .build/<name>/bootstrap, and a deploy target running
// sam build and sam deploy.
func CheckMakeTargets(ctx context.Context, root string, dirs []string) []error {
	var errs []error
	for _, d := range dirs {
		id := LogicalID(d)
		out, err := MakeDryRun(ctx, root, "build-"+id, "ARTIFACTS_DIR=/artifacts/"+d)
		if err != nil {
			errs = append(errs, fmt.Errorf("Makefile: target build-%s: %w", id, err))
			continue
		}
		for _, want := range append(buildFlags, "/artifacts/"+d+"/bootstrap", lambdafns.Package(d)) {
			if !strings.Contains(out, want) {
				errs = append(errs, fmt.Errorf("Makefile: build-%s does not use %q: %s", id, want, strings.TrimSpace(out)))
			}
		}
	}
	if len(dirs) > 0 {
		out, err := MakeDryRun(ctx, root, "build")
		if err != nil {
			errs = append(errs, fmt.Errorf("Makefile: target build: %w", err))
		} else {
			for _, d := range dirs {
				if want := ".build/" + d + "/bootstrap"; !strings.Contains(out, want) {
					errs = append(errs, fmt.Errorf("Makefile: make build does not build %s", want))
				}
			}
		}
	}
	if out, err := MakeDryRun(ctx, root, "deploy"); err != nil {
		errs = append(errs, fmt.Errorf("Makefile: target deploy: %w", err))
	} else if !strings.Contains(out, "sam build") || !strings.Contains(out, "sam deploy") {
		errs = append(errs, fmt.Errorf("Makefile: make deploy does not run sam build and sam deploy: %s", strings.TrimSpace(out)))
	}
	return errs
}

// MakeDryRun prints the commands `make target` would run (make -n).
func MakeDryRun(ctx context.Context, root, target string, vars ...string) (string, error) {
	args := append([]string{"-n", "--no-print-directory", "-C", root, target}, vars...)
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("make -n %s: %w: %s", target, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
