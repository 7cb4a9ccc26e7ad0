package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/shared/automation"
)

// jobDoc is a claimable job reminder of the given trigger type; the job
// starts tomorrow and the execution was created for that start.
func jobDoc(triggerType, jobStatus string) automation.Claimed {
	doc := invoiceDoc()
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	doc.Execution.Action, doc.Execution.TriggerType, doc.Execution.SubjectType = automation.ActionSendReminder, triggerType, "job"
	doc.Workflow.TriggerType = triggerType
	doc.Invoice = nil
	doc.Job = &automation.Job{ID: "J-1001", Title: "Boiler service", Status: jobStatus, ScheduledStart: &start}
	doc.Execution.SubjectID = doc.Job.ID
	td, _ := json.Marshal(map[string]any{"scheduled_start": "2026-11-30T09:00:00+00:00", "hours_before": 24})
	doc.Execution.TriggerData = td
	return doc
}

// A job reminder whose premise moved on is skipped, never sent: an
// appointment rescheduled, cancelled or completed; a stale job that left the
// workflow's stale statuses.
func TestJobReminderPremise(t *testing.T) {
	moved := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	sameInstant := time.Date(2026, 11, 30, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	cases := []struct {
		name   string
		doc    func() automation.Claimed
		status automation.OutcomeStatus
		code   automation.Code
	}{
		{"appointment as created", func() automation.Claimed { return jobDoc(automation.TriggerAppointment, "scheduled") },
			automation.OutcomeCompleted, ""},
		{"appointment same instant other zone", func() automation.Claimed {
			d := jobDoc(automation.TriggerAppointment, "scheduled")
			d.Job.ScheduledStart = &sameInstant
			return d
		}, automation.OutcomeCompleted, ""},
		{"appointment rescheduled", func() automation.Claimed {
			d := jobDoc(automation.TriggerAppointment, "scheduled")
			d.Job.ScheduledStart = &moved
			return d
		}, automation.OutcomeSkipped, automation.CodeSuperseded},
		{"appointment start cleared", func() automation.Claimed {
			d := jobDoc(automation.TriggerAppointment, "scheduled")
			d.Job.ScheduledStart = nil
			return d
		}, automation.OutcomeSkipped, automation.CodeSuperseded},
		{"appointment cancelled", func() automation.Claimed { return jobDoc(automation.TriggerAppointment, "cancelled") },
			automation.OutcomeSkipped, automation.CodeSubjectGone},
		{"appointment completed", func() automation.Claimed { return jobDoc(automation.TriggerAppointment, "completed") },
			automation.OutcomeSkipped, automation.CodeSubjectGone},
		{"stale job still stale (default statuses)", func() automation.Claimed { return jobDoc(automation.TriggerStaleJob, "in_progress") },
			automation.OutcomeCompleted, ""},
		{"stale job left configured statuses", func() automation.Claimed {
			d := jobDoc(automation.TriggerStaleJob, "scheduled")
			d.Workflow.TriggerConfig = json.RawMessage(`{"days_inactive":7,"statuses":["in_progress"]}`)
			return d
		}, automation.OutcomeSkipped, automation.CodeSuperseded},
		{"stale job completed", func() automation.Claimed { return jobDoc(automation.TriggerStaleJob, "completed") },
			automation.OutcomeSkipped, automation.CodeSubjectGone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, automation.ActionSendReminder)
			id := f.store.Add(tc.doc())
			f.process(t, id)
			o := f.lastOutcome(t, id)
			assert.Equal(t, tc.status, o.Status)
			assert.Equal(t, tc.code, o.ErrorCode)
			if tc.status == automation.OutcomeSkipped {
				assert.Zero(t, f.email.count()+f.sms.count())
			} else {
				assert.Positive(t, f.email.count())
			}
		})
	}
}
