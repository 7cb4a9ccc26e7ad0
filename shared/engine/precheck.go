package engine

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// jobPremise says whether a job reminder's premise still holds for the
// claimed job: an appointment reminder is for the start it was created for,
// a stale-job reminder for a job still in one of the workflow's stale
// statuses. It returns an outcome when not (the caller has checked that the
// job exists and is not cancelled).
func jobPremise(c *automation.Claimed, triggerType string) (status, code, msg string) {
	job := c.Job
	switch triggerType {
	case automation.TriggerAppointment:
		var td struct {
			ScheduledStart *time.Time `json:"scheduled_start"`
		}
		if err := json.Unmarshal(c.Execution.TriggerData, &td); err != nil || td.ScheduledStart == nil {
			return "", "", "" // created without a start: nothing to compare
		}
		if job.ScheduledStart == nil || !job.ScheduledStart.Equal(*td.ScheduledStart) {
			return automation.OutcomeSkipped, automation.ErrSuperseded, "appointment was rescheduled"
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
			return automation.OutcomeSkipped, automation.ErrSuperseded, "job is " + job.Status + ", no longer stale"
		}
	}
	return "", "", ""
}
