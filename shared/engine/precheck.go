package engine

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// ending is how an execution that is no longer wanted ends: the outcome
// it reports, with its code and message.
type ending struct {
	status automation.OutcomeStatus
	code   automation.Code
	msg    string
}

// skip is the ending of an execution with nothing left to do.
func skip(code automation.Code, msg string) ending {
	return ending{status: automation.OutcomeSkipped, code: code, msg: msg}
}

// precheck says whether the execution is still wanted: stop and how it
// ends when not.
func (e *Engine) precheck(c *automation.Claimed) (v ending, stop bool) {
	ex := c.Execution
	if !c.Workflow.IsActive {
		return skip(automation.CodeWorkflowInactive, "workflow is not active"), true
	}
	if ex.DeadlineAt != nil && !e.o.Now().Before(*ex.DeadlineAt) {
		return ending{automation.OutcomeFailed, automation.CodeExpired, "deadline passed"}, true
	}
	switch ex.SubjectType {
	case "invoice":
		if v, stop := invoicePremise(c.Invoice); stop {
			return v, true
		}
	case "job":
		if v, stop := jobPremise(c); stop {
			return v, true
		}
	}
	if ex.SubjectType != "organization" && c.Client == nil {
		return skip(automation.CodeNoRecipient, "no client"), true
	}
	return ending{}, false
}

// invoicePremise says whether an invoice reminder's invoice still wants
// one: it exists, is not settled and has a balance.
func invoicePremise(inv *automation.Invoice) (ending, bool) {
	if inv == nil {
		return skip(automation.CodeSubjectGone, "invoice not found"), true
	}
	switch inv.Status {
	case "paid", "cancelled", "void":
		return skip(automation.CodeInvoiceSettled, "invoice is "+inv.Status), true
	}
	if b, err := strconv.ParseFloat(strings.TrimSpace(inv.Balance), 64); err == nil && b <= 0 {
		return skip(automation.CodeInvoiceSettled, "invoice has no balance"), true
	}
	return ending{}, false
}

// jobPremise says whether a job reminder's job still wants one: it exists
// and is not cancelled, an appointment is still scheduled (for the start
// it was created for), a stale job is not completed (and still in one of
// the workflow's stale statuses).
func jobPremise(c *automation.Claimed) (ending, bool) {
	job := c.Job
	if job == nil {
		return skip(automation.CodeSubjectGone, "job not found"), true
	}
	if job.Status == "cancelled" {
		return skip(automation.CodeSubjectGone, "job is cancelled"), true
	}
	tt := c.Execution.TriggerType
	if tt == "" {
		tt = c.Workflow.TriggerType
	}
	if tt == automation.TriggerAppointment && job.Status != "scheduled" {
		return skip(automation.CodeSubjectGone, "appointment is "+job.Status), true
	}
	if tt == automation.TriggerStaleJob && job.Status == "completed" {
		return skip(automation.CodeSubjectGone, "job is completed"), true
	}
	return premiseMoved(c, tt)
}

// premiseMoved says whether a job reminder's premise moved on for the
// claimed job: an appointment reminder is for the start it was created
// for, a stale-job reminder for a job still in one of the workflow's stale
// statuses (the caller has checked that the job exists and is not
// cancelled).
func premiseMoved(c *automation.Claimed, triggerType string) (ending, bool) {
	job := c.Job
	switch triggerType {
	case automation.TriggerAppointment:
		var td struct {
			ScheduledStart *time.Time `json:"scheduled_start"`
		}
		if err := json.Unmarshal(c.Execution.TriggerData, &td); err != nil || td.ScheduledStart == nil {
			return ending{}, false // created without a start: nothing to compare
		}
		if job.ScheduledStart == nil || !job.ScheduledStart.Equal(*td.ScheduledStart) {
			return skip(automation.CodeSuperseded, "appointment was rescheduled"), true
		}
	case automation.TriggerStaleJob:
		var cfg struct {
			Statuses []string `json:"statuses"`
		}
		_ = json.Unmarshal(c.Workflow.TriggerConfig, &cfg) // malformed: the default statuses, as in SQL
		if len(cfg.Statuses) == 0 {
			cfg.Statuses = []string{"scheduled", "in_progress"}
		}
		if !slices.Contains(cfg.Statuses, job.Status) {
			return skip(automation.CodeSuperseded, "job is "+job.Status+", no longer stale"), true
		}
	}
	return ending{}, false
}
