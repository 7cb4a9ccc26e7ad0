// Package samtemplate loads the project's AWS SAM template (template.yaml)
// with goformation and checks that it, the Makefile and the functions/
// directories stay in step: one AWS::Serverless::Function per function
// directory with the runtime, architecture, handler, build method, Function
// URL and logging the deployment relies on, no secret in their environment
// (they read one Secrets Manager secret, and may read nothing else), and a
// build-<LogicalId> target for every function.
package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// LogicalID returns the SAM logical id of a function (lambdafns.Names):
// "send-reminder" -> "SendReminderFunction".
func LogicalID(dir string) string {
	return camel(dir) + "Function"
}

// OutputKey returns the stack output key that holds the Function URL of a
// function: "send-reminder" -> "SendReminderFunctionUrl".
func OutputKey(dir string) string {
	return LogicalID(dir) + "Url"
}

// ActionForOutputKey maps an output key back to its action among actions
// (the inverse of OutputKey); ok is false for any other key.
func ActionForOutputKey(key string, actions []string) (action string, ok bool) {
	for _, a := range actions {
		if OutputKey(a) == key {
			return a, true
		}
	}
	return "", false
}

func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// unmodelled are AWS::Serverless::Function properties of the SAM
// specification that goformation v7.14.9's generated types do not know yet;
// its strict decoder would reject them. Load takes them out before decoding
// and keeps them in Template.Extra so that they can still be checked. Any
// other unknown property still fails the parse (a typo is an error).
var unmodelled = []string{"LoggingConfig", "RuntimeManagementConfig", "SnapStart", "RecursiveLoop"}

// Template is a parsed SAM template.
type Template struct {
	// CFN is the template with intrinsic functions resolved against the
	// parameters' defaults and conditions evaluated (goformation's view).
	// Fn::GetAtt is kept as {"Fn::GetAtt": [...]}.
	CFN *cloudformation.Template
	// Raw is the template as written (short-form tags turned into long
	// form, nothing resolved), for checks on how a value is built.
	Raw map[string]any
	// Extra holds, per function logical id ("Globals" for the Globals
	// section), the unmodelled properties taken out before decoding.
	Extra map[string]map[string]any
}

// Load reads and parses a SAM template file.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return Parse(data)
}

// processMu serialises intrinsics.ProcessYAML: it re-registers its tag
// resolvers in a package-level map on every call, so overlapping calls (the
// parallel template tests, any concurrent Check) crash with a concurrent map
// write.
var processMu sync.Mutex

func processYAML(data []byte, o *intrinsics.ProcessorOptions) ([]byte, error) {
	processMu.Lock()
	defer processMu.Unlock()
	return intrinsics.ProcessYAML(data, o)
}

// Parse parses the YAML text of a SAM template, resolving parameters to
// their defaults.
func Parse(data []byte) (*Template, error) { return ParseWithParameters(data, nil) }

// ParseWithParameters parses the YAML text of a SAM template, resolving
// parameters to the given values (as `sam deploy --parameter-overrides`
// would) or else to their defaults.
func ParseWithParameters(data []byte, params map[string]any) (*Template, error) {
	rawJSON, err := processYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	t := &Template{Extra: map[string]map[string]any{}}
	if err := json.Unmarshal(rawJSON, &t.Raw); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}

	if err := checkShortTags(data); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	keepGetAtt := func(name string, input any, _ any) any { return map[string]any{name: input} }
	resolved, err := processYAML(data, &intrinsics.ProcessorOptions{
		EvaluateConditions:        true,
		ParameterOverrides:        params,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Fn::GetAtt": keepGetAtt},
	})
	if err != nil {
		return nil, fmt.Errorf("resolve template: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(resolved, &doc); err != nil {
		return nil, fmt.Errorf("resolve template: %w", err)
	}
	t.takeUnmodelled(doc)
	stripped, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("resolve template: %w", err)
	}
	t.CFN, err = goformation.ParseJSONWithOptions(stripped, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("decode template (goformation): %w", err)
	}
	return t, nil
}

// shortTags are the YAML short-form intrinsic tags goformation v7.14.9
// understands. It silently drops any other tag (!Condition, !ToJsonString):
// `!Condition A` would read as the string "A", which its condition
// evaluation then resolves or not depending on map order. Use the long form
// ({Condition: A}) for those.
var shortTags = map[string]bool{
	"Ref": true, "GetAtt": true, "Base64": true, "FindInMap": true, "GetAZs": true,
	"ImportValue": true, "Join": true, "Select": true, "Split": true, "Sub": true,
	"Equals": true, "Cidr": true, "And": true, "If": true, "Not": true, "Or": true,
}

var shortTag = regexp.MustCompile(`(^|[\s\[{,:-])!([A-Za-z:]+)`)

// checkShortTags refuses short-form tags goformation would drop.
func checkShortTags(data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.Index(line, "#"); j >= 0 && (j == 0 || line[j-1] == ' ') && !strings.ContainsAny(line[:j], `"'`) {
			line = line[:j]
		}
		for _, m := range shortTag.FindAllStringSubmatch(line, -1) {
			if !shortTags[m[2]] {
				return fmt.Errorf("line %d: short-form tag !%s is not understood by goformation; use the long form (%s: ...)", i+1, m[2], m[2])
			}
		}
	}
	return nil
}

func (t *Template) takeUnmodelled(doc map[string]any) {
	take := func(id string, props map[string]any) {
		for _, k := range unmodelled {
			if v, ok := props[k]; ok {
				if t.Extra[id] == nil {
					t.Extra[id] = map[string]any{}
				}
				t.Extra[id][k] = v
				delete(props, k)
			}
		}
	}
	if g, ok := doc["Globals"].(map[string]any); ok {
		if f, ok := g["Function"].(map[string]any); ok {
			take("Globals", f)
		}
	}
	res, _ := doc["Resources"].(map[string]any)
	for id, r := range res {
		rm, _ := r.(map[string]any)
		if rm["Type"] != "AWS::Serverless::Function" {
			continue
		}
		if props, ok := rm["Properties"].(map[string]any); ok {
			take(id, props)
		}
	}
}

// Function is the effective configuration of one function: its resource's
// properties over the Globals section's, as SAM merges them (scalars from
// the resource win, Environment.Variables maps are merged).
type Function struct {
	LogicalID     string
	Resource      *serverless.Function
	Runtime       string
	Architectures []string
	Handler       string
	Timeout       int
	MemorySize    int
	// ReservedConcurrency is nil when left to the account's unreserved pool.
	ReservedConcurrency *int
	URLAuthType         string
	BuildMethod         string
	CodeURI             string
	Environment         map[string]string
	LoggingConfig       map[string]any
}

// Functions returns the effective configuration of every
// AWS::Serverless::Function, keyed by logical id.
func (t *Template) Functions() map[string]*Function {
	g, err := t.CFN.GetServerlessGlobalFunction()
	if err != nil {
		g = &global.Function{}
	}
	out := map[string]*Function{}
	for id, r := range t.CFN.GetAllServerlessFunctionResources() {
		f := &Function{LogicalID: id, Resource: r, Environment: map[string]string{}, LoggingConfig: map[string]any{}}
		f.Runtime = pick(r.Runtime, g.Runtime)
		f.Handler = pick(r.Handler, g.Handler)
		f.Architectures = r.Architectures
		if f.Architectures == nil && g.Architectures != nil {
			f.Architectures = *g.Architectures
		}
		f.Timeout = pick(r.Timeout, g.Timeout)
		f.MemorySize = pick(r.MemorySize, g.MemorySize)
		f.ReservedConcurrency = r.ReservedConcurrentExecutions
		if f.ReservedConcurrency == nil {
			f.ReservedConcurrency = g.ReservedConcurrentExecutions
		}
		switch {
		case r.FunctionUrlConfig != nil:
			f.URLAuthType = r.FunctionUrlConfig.AuthType
		case g.FunctionUrlConfig != nil:
			f.URLAuthType = g.FunctionUrlConfig.AuthType
		}
		if bm, ok := r.AWSCloudFormationMetadata["BuildMethod"].(string); ok {
			f.BuildMethod = bm
		}
		if c := r.CodeUri; c != nil && c.String != nil {
			f.CodeURI = *c.String
		} else if g.CodeUri != nil && g.CodeUri.String != nil {
			f.CodeURI = *g.CodeUri.String
		}
		if g.Environment != nil {
			for k, v := range g.Environment.Variables {
				f.Environment[k] = v
			}
		}
		if r.Environment != nil {
			for k, v := range r.Environment.Variables {
				f.Environment[k] = v
			}
		}
		for _, src := range []string{"Globals", id} {
			if lc, ok := t.Extra[src]["LoggingConfig"].(map[string]any); ok {
				for k, v := range lc {
					f.LoggingConfig[k] = v
				}
			}
		}
		out[id] = f
	}
	return out
}

func pick[T any](own, global *T) T {
	if own != nil {
		return *own
	}
	if global != nil {
		return *global
	}
	var zero T
	return zero
}

// RawEnvironment returns the environment variables as written (Globals
// merged with the resource), each value the unresolved YAML node: a string,
// or an intrinsic function such as {"Fn::Sub": "..."}.
func (t *Template) RawEnvironment(logicalID string) map[string]any {
	out := map[string]any{}
	vars := func(props map[string]any) {
		env, _ := props["Environment"].(map[string]any)
		v, _ := env["Variables"].(map[string]any)
		for k, val := range v {
			out[k] = val
		}
	}
	if g, ok := t.Raw["Globals"].(map[string]any); ok {
		if f, ok := g["Function"].(map[string]any); ok {
			vars(f)
		}
	}
	res, _ := t.Raw["Resources"].(map[string]any)
	r, _ := res[logicalID].(map[string]any)
	props, _ := r["Properties"].(map[string]any)
	vars(props)
	return out
}
