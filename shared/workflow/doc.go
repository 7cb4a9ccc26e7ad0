// Package workflow says what a valid workflow is. The rules are one JSON
// document, rules.json, embedded here and returned verbatim by the SQL
// function automation_workflow_rules() (a test keeps the two equal): the
// trigger types with their trigger_config keys, the step types with their
// fields, the bounds (at most 20 steps, delays from 1 minute to 365 days,
// templates of at most 64 KB) and the template variables.
//
// Validate interprets the document the way the SQL function
// automation_workflow_problems() does, and returns the same messages in the
// same order (a shared corpus, testdata/corpus.json, is run through both).
// The database refuses a workflow with problems on insert and update
// (trigger automation_workflows_validate, errcode 23514); the functions
// validate each claimed workflow again, so that a row written before the
// rules, or with the trigger disabled, fails alone (invalid_workflow).
//
// Messages never echo a value, only paths, rule bounds and user-written
// names (an unknown key, an unknown {{variable}}, cut to 64 characters):
//
//	trigger_type: must be one of scheduled, invoice_overdue, ...
//	trigger_config: must be an object
//	trigger_config.<key>: unknown key
//	trigger_config.<key>: must be a whole number from <min> to <max>
//	trigger_config.<key>: must be one of <v1>, <v2>, ...
//	trigger_config.<key>: must be text of at most <n> characters
//	trigger_config.<key>: must be a list of 1 to <n> whole numbers from <min> to <max>
//	trigger_config.<key>: must be a list of 1 to <n> texts of at most <m> characters
//	steps: must be a list
//	steps: at most 20 steps
//	steps[<i>]: must be an object
//	steps[<i>].type: must be one of send_email, send_sms, delay
//	steps[<i>].<field>: unknown key | the field messages above | must be text of at most <n> bytes
//	steps[<i>].<field>: unknown variable {{<name>}}
//	steps[<i>].<field>: unclosed {{
//	steps[<i>]: a delay must be from 1 minute to 365 days
//
// Order: trigger_type, trigger_config, steps (the count, then each step in
// turn). Within an object, the known keys present in rule order, then each
// unknown key in byte order; within a template, the distinct unknown
// variables in order of first appearance, then an unclosed "{{".
//
// A whole number is a JSON number without fractional digits as PostgreSQL's
// numeric prints it: 9, 1e1 and 1.5e1 are whole, 9.0, 9.5 and 1e-1 are not;
// a string ("9"), true or null is not a number. A template placeholder is
// what follows each "{{" up to the first "}}" before the next "{{", with
// surrounding white space (Unicode White_Space) trimmed, as shared/render
// reads it.
package workflow
