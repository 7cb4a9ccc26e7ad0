package samtemplate

import (
	"encoding/json"
	"reflect"
	"strings"
)

// AlarmTopicParameter is the optional SNS topic every alarm notifies, under
// the condition AlarmTopicCondition (it is set).
const (
	AlarmTopicParameter = "AlarmTopicArn"
	AlarmTopicCondition = "HasAlarmTopic"
	// DashboardID is the logical id of the CloudWatch dashboard.
	DashboardID = "Dashboard"
	// DurationAlarmShare is the share of the function timeout at which the
	// duration alarm fires.
	DurationAlarmShare = 0.8
)

// Alarm is one of the CloudWatch alarms every function has.
type Alarm struct {
	Suffix string // logical id: the function's CamelCase name + Suffix
	Metric string // AWS/Lambda metric
}

// Alarms are the alarms of every function: Errors and Throttles at 1 or
// more in 5 minutes, Duration (p99 or Maximum, ms) at DurationAlarmShare of
// the timeout.
var Alarms = []Alarm{{"ErrorsAlarm", "Errors"}, {"ThrottlesAlarm", "Throttles"}, {"DurationAlarm", "Duration"}}

// AlarmID returns the logical id of a function directory's alarm:
// ("send-reminder", Errors) -> "SendReminderErrorsAlarm".
func AlarmID(dir string, a Alarm) string { return camel(dir) + a.Suffix }

// DashboardMetrics are the figures the dashboard shows for every function.
var DashboardMetrics = []string{"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}

// alarmActions is what AlarmActions and OKActions must be: the topic when
// it is set.
var alarmActions = map[string]any{"Fn::If": []any{AlarmTopicCondition, []any{map[string]any{"Ref": AlarmTopicParameter}}, map[string]any{"Ref": "AWS::NoValue"}}}

func rawResource(t *Template, id string) (typ string, props map[string]any, ok bool) {
	res, _ := t.Raw["Resources"].(map[string]any)
	r, ok := res[id].(map[string]any)
	if !ok {
		return "", nil, false
	}
	typ, _ = r["Type"].(string)
	props, _ = r["Properties"].(map[string]any)
	return typ, props, true
}

// checkAlarms verifies the three alarms of one function.
func checkAlarms(t *Template, dir string, f *Function, fail func(string, ...any)) {
	fnRef := map[string]any{"Ref": LogicalID(dir)}
	for _, a := range Alarms {
		id := AlarmID(dir, a)
		typ, p, ok := rawResource(t, id)
		if !ok {
			fail("%s has no alarm %s (AWS::CloudWatch::Alarm on AWS/Lambda %s): copy another function's", LogicalID(dir), id, a.Metric)
			continue
		}
		if typ != "AWS::CloudWatch::Alarm" {
			fail("%s: Type %q, want AWS::CloudWatch::Alarm", id, typ)
			continue
		}
		want := map[string]any{
			"Namespace":          "AWS/Lambda",
			"MetricName":         a.Metric,
			"Dimensions":         []any{map[string]any{"Name": "FunctionName", "Value": fnRef}},
			"ComparisonOperator": "GreaterThanOrEqualToThreshold",
			"TreatMissingData":   "notBreaching",
			"AlarmActions":       alarmActions,
			"OKActions":          alarmActions,
		}
		for k, v := range want {
			if !reflect.DeepEqual(p[k], v) {
				fail("%s: %s %v, want %v", id, k, jsonText(p[k]), jsonText(v))
			}
		}
		threshold := 1.0
		if a.Metric == "Duration" {
			threshold = DurationAlarmShare * float64(f.Timeout) * 1000
			st, ext := p["Statistic"], p["ExtendedStatistic"]
			if st != "Maximum" && ext != "p99" {
				fail("%s: statistic %v/%v, want ExtendedStatistic p99 or Statistic Maximum", id, st, ext)
			}
		} else if p["Statistic"] != "Sum" {
			fail("%s: Statistic %v, want Sum", id, p["Statistic"])
		}
		if got, ok := number(p["Threshold"]); !ok || got != threshold {
			fail("%s: Threshold %v, want %v (%s)", id, p["Threshold"], threshold, map[bool]string{true: "80 % of the function timeout in ms", false: "one is too many"}[a.Metric == "Duration"])
		}
	}
}

// checkAlarmTopic verifies the optional topic parameter and its condition.
func checkAlarmTopic(t *Template, fail func(string, ...any)) {
	p, ok := t.CFN.Parameters[AlarmTopicParameter]
	if !ok {
		fail("template.yaml has no parameter %s (the SNS topic the alarms notify)", AlarmTopicParameter)
	} else if p.Default != "" {
		fail("parameter %s: Default %v, want \"\" (optional)", AlarmTopicParameter, p.Default)
	}
	conds, _ := t.Raw["Conditions"].(map[string]any)
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": AlarmTopicParameter}, ""}}}}
	if !reflect.DeepEqual(conds[AlarmTopicCondition], want) {
		fail("condition %s: %v, want %v", AlarmTopicCondition, jsonText(conds[AlarmTopicCondition]), jsonText(want))
	}
}

// checkDashboard verifies that the dashboard has one row per function, all
// rows the same text, and that the body is JSON showing DashboardMetrics
// for every function.
//
// Long: one check per dashboard property, in the template's order
func checkDashboard(t *Template, dirs []string, fns map[string]*Function, fail func(string, ...any)) {
	typ, p, ok := rawResource(t, DashboardID)
	if !ok || typ != "AWS::CloudWatch::Dashboard" {
		fail("template.yaml has no AWS::CloudWatch::Dashboard %s", DashboardID)
		return
	}
	// !Join ["", ['{"widgets":[', !Join [",", [rows]], ']}']]
	outer, _ := join(p["DashboardBody"])
	if len(outer) != 3 {
		fail("%s: DashboardBody must be !Join [\"\", ['{\"widgets\":[', !Join [\",\", [one !Sub per function]], ']}']]", DashboardID)
		return
	}
	rows, _ := join(outer[1])
	var text string
	seen := map[string]bool{}
	var body []string
	for i, r := range rows {
		sub, _ := r.(map[string]any)["Fn::Sub"].([]any)
		if len(sub) != 2 {
			fail("%s: row %d is not !Sub [text, {Fn, Name, Y, Alarm}]", DashboardID, i)
			continue
		}
		s, _ := sub[0].(string)
		vars, _ := sub[1].(map[string]any)
		if text == "" {
			text = s
		} else if s != text {
			fail("%s: row %d's text differs from the first row's: every function's row is the same text", DashboardID, i)
		}
		ref, _ := vars["Fn"].(map[string]any)
		id, _ := ref["Ref"].(string)
		seen[id] = true
		y, _ := vars["Y"].(string)
		name, _ := vars["Name"].(string)
		alarm, _ := vars["Alarm"].(string) // the duration alarm's threshold, drawn as a line
		body = append(body, strings.NewReplacer("${Fn}", id, "${Name}", name, "${Y}", y, "${Alarm}", alarm, "${AWS::Region}", "us-east-1").Replace(s))
	}
	var doc struct {
		Widgets []struct {
			X, Y, Width, Height int
			Properties          struct {
				Metrics     [][]any
				Annotations struct{ Horizontal []struct{ Value float64 } }
			}
		}
	}
	if err := json.Unmarshal([]byte(outer[0].(string)+strings.Join(body, ",")+outer[2].(string)), &doc); err != nil {
		fail("%s: the body is not JSON once substituted: %v", DashboardID, err)
		return
	}
	shown := map[string]map[string]bool{} // logical id -> metrics
	cells := map[[2]int]bool{}
	for _, w := range doc.Widgets {
		if cells[[2]int{w.X, w.Y}] {
			fail("%s: two widgets at x=%d y=%d (give each row its own Y)", DashboardID, w.X, w.Y)
		}
		cells[[2]int{w.X, w.Y}] = true
		for _, m := range w.Properties.Metrics {
			if len(m) >= 4 && m[0] == "AWS/Lambda" && m[2] == "FunctionName" {
				id, _ := m[3].(string)
				if shown[id] == nil {
					shown[id] = map[string]bool{}
				}
				shown[id][m[1].(string)] = true
			}
		}
	}
	for _, d := range dirs {
		id := LogicalID(d)
		if !seen[id] {
			fail("%s has no row in the %s (one more !Sub with Fn: !Ref %s)", id, DashboardID, id)
			continue
		}
		for _, m := range DashboardMetrics {
			if !shown[id][m] {
				fail("%s: %s's row does not show %s", DashboardID, id, m)
			}
		}
	}
	for id := range seen {
		if _, ok := fns[id]; !ok {
			fail("%s shows %s, which is not a function of the template", DashboardID, id)
		}
	}
}

// join returns the list of a {"Fn::Join": [sep, [items]]}.
func join(v any) ([]any, bool) {
	m, _ := v.(map[string]any)
	j, _ := m["Fn::Join"].([]any)
	if len(j) != 2 {
		return nil, false
	}
	items, ok := j[1].([]any)
	return items, ok
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
