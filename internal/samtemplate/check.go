package samtemplate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
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

// secretRef is the only accepted form of a secret value: a Secrets Manager
// dynamic reference to the key named like the variable, in a secret named
// by a template parameter.
var secretRef = regexp.MustCompile(`^\{\{resolve:secretsmanager:\$\{([A-Za-z0-9]+)\}:SecretString:([A-Z0-9_]+)\}\}$`)

// literalSecret matches strings that look like a secret value written into
// the template: a Standard Webhooks key, a JWT, provider key shapes.
var literalSecret = regexp.MustCompile(`whsec_|eyJ[A-Za-z0-9_-]{10,}|\bkey-[0-9a-f]{16,}|\bKEY[0-9A-F]{20,}|\bSK[0-9a-f]{32}\b`)

// Check verifies the repository at root: template.yaml against the
// functions/ directories, the secrets rule and the Makefile's build targets.
// It returns every problem found (nil when all is well).
func Check(ctx context.Context, root string) []error {
	t, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return []error{err}
	}
	dirs, err := FunctionDirs(root)
	if err != nil {
		return []error{err}
	}
	errs := CheckTemplate(t, dirs)
	errs = append(errs, CheckMakeTargets(ctx, root, dirs)...)
	return errs
}

// CheckTemplate verifies a parsed template against the function directories.
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
			fail("functions/%s has no AWS::Serverless::Function %s in template.yaml", d, id)
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
		checkEnvironment(t, f, fail)
		checkOutput(t, d, fail)
	}
	for id := range fns {
		if _, ok := want[id]; !ok {
			fail("template.yaml declares %s but there is no functions/ directory for it", id)
		}
	}
	checkParameters(t, fail)
	checkLiterals(t.Raw, "", fail)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// requiredVariables are the configuration names every function reads
// (shared/config); the template must set them all.
var requiredVariables = []string{
	"SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DUEFLOW_WEBHOOK_SECRET",
	"EMAIL_PROVIDER", "EMAIL_FROM", "SMS_PROVIDER",
	"DUEFLOW_CONCURRENCY", "DUEFLOW_LEASE_SECONDS", "DUEFLOW_FUNCTION_TIMEOUT", "LOG_LEVEL",
}

func checkEnvironment(t *Template, f *Function, fail func(string, ...any)) {
	for _, name := range requiredVariables {
		if _, ok := f.Environment[name]; !ok {
			fail("%s: environment variable %s is not set", f.LogicalID, name)
		}
	}
	params, _ := t.Raw["Parameters"].(map[string]any)
	for name, v := range t.RawEnvironment(f.LogicalID) {
		if !IsSecretVariable(name) {
			continue
		}
		ref, ok := secretReference(v)
		if !ok {
			fail("%s: secret %s must be !Sub \"{{resolve:secretsmanager:${<Parameter>}:SecretString:%s}}\" (optionally inside !If [cond, ref, \"\"]), got %v", f.LogicalID, name, name, v)
			continue
		}
		m := secretRef.FindStringSubmatch(ref)
		if _, isParam := params[m[1]]; !isParam {
			fail("%s: secret %s names its secret with ${%s}, which is not a template parameter", f.LogicalID, name, m[1])
		}
		if m[2] != name {
			fail("%s: secret %s reads key %s of the secret, want %s", f.LogicalID, name, m[2], name)
		}
	}
}

// secretReference returns the dynamic reference a secret variable is built
// from: {"Fn::Sub": ref} or {"Fn::If": [cond, {"Fn::Sub": ref}, ""]}.
func secretReference(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	if s, ok := m["Fn::Sub"].(string); ok {
		return s, secretRef.MatchString(s)
	}
	if arr, ok := m["Fn::If"].([]any); ok && len(arr) == 3 {
		if other, ok := arr[2].(string); !ok || other != "" {
			return "", false
		}
		return secretReference(arr[1])
	}
	return "", false
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
		if strings.Contains(lower, "secret") && name != "SecretName" ||
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
// build-<LogicalId> target for every function directory that builds it into
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
		for _, want := range append(buildFlags, "/artifacts/"+d+"/bootstrap", "./functions/"+d) {
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
