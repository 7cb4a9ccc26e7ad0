package workflow

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

//go:embed rules.json
var rulesJSON []byte

// Field types of a rule.
const (
	TypeInteger     = "integer"      // a whole number from Min to Max
	TypeEnum        = "enum"         // one of Values
	TypeString      = "string"       // text of at most MaxChars characters or MaxBytes bytes
	TypeIntegerList = "integer_list" // 1 to MaxItems whole numbers from Min to Max
	TypeStringList  = "string_list"  // 1 to MaxItems texts of at most MaxChars characters
)

// Document is the rules document: rules.json, as automation_workflow_rules() returns it.
type Document struct {
	Version      int           `json:"version"`
	TriggerTypes []TriggerType `json:"trigger_types"`
	Steps        StepRules     `json:"steps"`
	Variables    []string      `json:"variables"` // the template variables (shared/render's)
}

// TriggerType is one trigger type with the keys its trigger_config may hold.
type TriggerType struct {
	Name   string  `json:"name"`
	Config []Field `json:"config"`
}

// StepRules bound a workflow's steps.
type StepRules struct {
	MaxSteps int        `json:"max_steps"`
	Types    []StepType `json:"types"`
}

// StepType is one step type with its fields (besides "type").
type StepType struct {
	Name   string  `json:"name"`
	Fields []Field `json:"fields"`
	// TotalMinutes, when set, bounds the sum of the fields' UnitMinutes
	// multiples (a delay).
	TotalMinutes *Total `json:"total_minutes,omitempty"`
}

// Total bounds the sum of a step's unit fields, in minutes.
type Total struct {
	Min     int64  `json:"min"`
	Max     int64  `json:"max"`
	Message string `json:"message"`
}

// Field is the rule of one key of trigger_config or of a step.
type Field struct {
	Key         string   `json:"key"`
	Type        string   `json:"type"` // Type* constants
	Values      []string `json:"values,omitempty"`
	Min         int64    `json:"min,omitempty"`
	Max         int64    `json:"max,omitempty"`
	MaxItems    int64    `json:"max_items,omitempty"`
	MaxChars    int64    `json:"max_chars,omitempty"`
	MaxBytes    int64    `json:"max_bytes,omitempty"`
	Template    bool     `json:"template,omitempty"`     // a message template: placeholders checked
	UnitMinutes int64    `json:"unit_minutes,omitempty"` // minutes per unit, for a step's TotalMinutes
}

// parsed is the document Validate reads, decoded once.
var parsed = sync.OnceValue(Rules)

// Rules returns the rules document, decoded afresh (the caller may keep or
// change it). rules.json is embedded and a test decodes it, so it cannot fail.
func Rules() Document {
	d, err := decodeRules(rulesJSON)
	if err != nil {
		panic(err)
	}
	return d
}

// decodeRules decodes a rules document; a key the Go types do not know is
// an error (Validate would silently ignore that rule).
func decodeRules(b []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("workflow: decode rules.json: %w", err)
	}
	return d, nil
}
