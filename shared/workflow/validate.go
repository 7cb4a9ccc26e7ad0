package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dueflow/dueflow/shared/text"
)

// maxShown is how many characters of a user-written name a message shows.
const maxShown = 64

// Validate returns the problems of a workflow, in rule order, exactly as
// automation_workflow_problems(trigger_type, trigger_config, steps) does;
// none when it is valid. An empty (nil) triggerConfig or steps stands for
// SQL NULL; bytes that are not one JSON value count as the wrong JSON type.
func Validate(triggerType string, triggerConfig, steps json.RawMessage) []string {
	d := parsed()
	var out []string

	var tt *TriggerType
	for i := range d.TriggerTypes {
		if d.TriggerTypes[i].Name == triggerType {
			tt = &d.TriggerTypes[i]
			break
		}
	}
	if tt == nil {
		names := make([]string, len(d.TriggerTypes))
		for i, t := range d.TriggerTypes {
			names[i] = t.Name
		}
		out = append(out, "trigger_type: must be one of "+strings.Join(names, ", "))
	}

	cfg, ok := decodeValue(triggerConfig).(map[string]any)
	switch {
	case !ok:
		out = append(out, "trigger_config: must be an object")
	case tt != nil:
		out = append(out, objectProblems("trigger_config", tt.Config, cfg, "")...)
	}

	list, ok := decodeValue(steps).([]any)
	if !ok {
		return append(out, "steps: must be a list")
	}
	if len(list) > d.Steps.MaxSteps {
		out = append(out, "steps: at most "+strconv.Itoa(d.Steps.MaxSteps)+" steps")
	}
	for i, s := range list {
		out = append(out, stepProblems(&d, i, s)...)
	}
	return out
}

// decodeValue decodes one JSON value (numbers as json.Number); nil for
// empty input, or input that is not exactly one JSON value.
func decodeValue(raw json.RawMessage) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil
	}
	return v
}

func stepProblems(d *Document, i int, s any) []string {
	path := "steps[" + strconv.Itoa(i) + "]"
	obj, ok := s.(map[string]any)
	if !ok {
		return []string{path + ": must be an object"}
	}
	var st *StepType
	if name, ok := obj["type"].(string); ok {
		for j := range d.Steps.Types {
			if d.Steps.Types[j].Name == name {
				st = &d.Steps.Types[j]
				break
			}
		}
	}
	if st == nil {
		names := make([]string, len(d.Steps.Types))
		for j, t := range d.Steps.Types {
			names[j] = t.Name
		}
		return []string{path + ".type: must be one of " + strings.Join(names, ", ")}
	}
	out := objectProblems(path, st.Fields, obj, "type")
	if st.TotalMinutes != nil && len(out) == 0 {
		// every unit field present is a whole number in its range here
		var total int64
		for _, f := range st.Fields {
			if v, ok := obj[f.Key]; ok && f.UnitMinutes != 0 {
				n, _ := wholeNumber(v)
				total += n * f.UnitMinutes
			}
		}
		if total < st.TotalMinutes.Min || total > st.TotalMinutes.Max {
			out = append(out, path+": "+st.TotalMinutes.Message)
		}
	}
	return out
}

// objectProblems checks the known keys present in rule order, then lists
// each unknown key (other than extra) in byte order.
func objectProblems(path string, fields []Field, obj map[string]any, extra string) []string {
	var out []string
	known := make(map[string]bool, len(fields)+1)
	for _, f := range fields {
		known[f.Key] = true
		if v, ok := obj[f.Key]; ok {
			out = append(out, fieldProblems(path+"."+f.Key, f, v)...)
		}
	}
	var unknown []string
	for k := range obj {
		if !known[k] && (extra == "" || k != extra) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out = append(out, path+"."+shown(k)+": unknown key")
	}
	return out
}

func fieldProblems(path string, f Field, v any) []string {
	bounds := strconv.FormatInt(f.Min, 10) + " to " + strconv.FormatInt(f.Max, 10)
	switch f.Type {
	case TypeInteger:
		if !isInt(v, f.Min, f.Max) {
			return []string{path + ": must be a whole number from " + bounds}
		}
	case TypeEnum:
		s, ok := v.(string)
		if !ok || !contains(f.Values, s) {
			return []string{path + ": must be one of " + strings.Join(f.Values, ", ")}
		}
	case TypeString:
		s, ok := v.(string)
		if !ok || (f.MaxChars > 0 && int64(utf8.RuneCountInString(s)) > f.MaxChars) ||
			(f.MaxBytes > 0 && int64(len(s)) > f.MaxBytes) {
			if f.MaxBytes > 0 {
				return []string{path + ": must be text of at most " + strconv.FormatInt(f.MaxBytes, 10) + " bytes"}
			}
			return []string{path + ": must be text of at most " + strconv.FormatInt(f.MaxChars, 10) + " characters"}
		}
		if f.Template {
			return templateProblems(path, s, parsed().Variables)
		}
	case TypeIntegerList:
		ok := false
		if l, isList := v.([]any); isList && len(l) >= 1 && int64(len(l)) <= f.MaxItems {
			ok = true
			for _, e := range l {
				ok = ok && isInt(e, f.Min, f.Max)
			}
		}
		if !ok {
			return []string{path + ": must be a list of 1 to " + strconv.FormatInt(f.MaxItems, 10) +
				" whole numbers from " + bounds}
		}
	case TypeStringList:
		ok := false
		if l, isList := v.([]any); isList && len(l) >= 1 && int64(len(l)) <= f.MaxItems {
			ok = true
			for _, e := range l {
				s, isText := e.(string)
				ok = ok && isText && int64(utf8.RuneCountInString(s)) <= f.MaxChars
			}
		}
		if !ok {
			return []string{path + ": must be a list of 1 to " + strconv.FormatInt(f.MaxItems, 10) +
				" texts of at most " + strconv.FormatInt(f.MaxChars, 10) + " characters"}
		}
	default:
		return []string{path + ": has no rule"}
	}
	return nil
}

// templateProblems lists the distinct unknown {{variables}} of a template in
// order of first appearance, then an unclosed "{{": every "{{" opens a
// placeholder that ends at the first "}}" before the next "{{".
func templateProblems(path, tmpl string, variables []string) []string {
	pieces := strings.Split(tmpl, "{{")
	if len(pieces) < 2 {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	unclosed := false
	for _, p := range pieces[1:] {
		end := strings.Index(p, "}}")
		if end < 0 {
			unclosed = true
			continue
		}
		name := strings.TrimSpace(p[:end])
		if contains(variables, name) {
			continue
		}
		if s := shown(name); !seen[s] {
			seen[s] = true
			out = append(out, path+": unknown variable {{"+s+"}}")
		}
	}
	if unclosed {
		out = append(out, path+": unclosed {{")
	}
	return out
}

// isInt reports whether v is a whole number (see wholeNumber) from min to max.
func isInt(v any, min, max int64) bool {
	n, ok := wholeNumber(v)
	return ok && n >= min && n <= max
}

// wholeNumber returns v as an int64 when v is a JSON number that PostgreSQL's
// numeric would print without fractional digits (its display scale, the
// fraction's digits minus the exponent, is 0) and that has at most 18
// digits; ok is false otherwise. It never overflows, whatever the exponent.
func wholeNumber(v any) (n int64, ok bool) {
	num, isNum := v.(json.Number)
	if !isNum {
		return 0, false
	}
	s := string(num)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e := strings.TrimPrefix(s[i+1:], "+")
		if len(strings.TrimLeft(strings.TrimPrefix(e, "-"), "0")) > 9 {
			// |exponent| >= 1e9: no whole number this validator can accept
			// (too large, or fractional digits); a zero mantissa with a
			// huge positive exponent is 0, as in numeric
			if strings.HasPrefix(e, "-") || strings.Trim(mant, "0.") != "" {
				return 0, false
			}
			return 0, true
		}
		x, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return 0, false
		}
		exp = x
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if int64(len(frac))-exp > 0 {
		return 0, false // fractional digits (display scale > 0)
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, true
	}
	zeros := exp - int64(len(frac))
	if int64(len(digits))+zeros > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", int(zeros)), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// shown is a user-written name as a message shows it: at most maxShown
// characters, followed by an ellipsis when cut.
func shown(name string) string {
	if utf8.RuneCountInString(name) <= maxShown {
		return name
	}
	return string([]rune(name)[:maxShown]) + text.Ellipsis
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
