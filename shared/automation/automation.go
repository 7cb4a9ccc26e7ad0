// Package automation holds the wire types shared by the database RPCs and the
// functions: what automation_claim returns, what automation_begin_deliveries
// takes and returns, and what automation_report takes and returns. The JSON
// field names are the contract with sql/ (see docs/contract.md); change them
// only together with the SQL. It also holds the one error shape of every
// package (Error, with a Code; ErrorCode).
package automation

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Action names: one Lambda function per action.
const (
	ActionSendReminder    = "send-reminder"
	ActionInvoiceReminder = "invoice-reminder"
	ActionRunWorkflow     = "run-workflow"
)

// Actions lists every action, in a stable order.
var Actions = []string{ActionSendReminder, ActionInvoiceReminder, ActionRunWorkflow}

// IsAction reports whether s names a known action.
func IsAction(s string) bool {
	for _, a := range Actions {
		if a == s {
			return true
		}
	}
	return false
}

// Trigger types of automation_workflows.trigger_type.
const (
	TriggerScheduled      = "scheduled"
	TriggerInvoiceOverdue = "invoice_overdue"
	TriggerMaintenanceDue = "maintenance_due"
	TriggerStaleJob       = "stale_job"
	TriggerAppointment    = "appointment"
)

// Message classes (automation_message_class): a transactional message
// (invoice reminders, appointments) goes even to a client who unsubscribed
// from the others; a non-transactional one (maintenance, follow-ups,
// scheduled mail) carries an opt-out and honours it.
const (
	ClassTransactional    = "transactional"
	ClassNonTransactional = "non_transactional"
)

// DefaultMessageClass is the class of a trigger type's messages when its
// workflow does not set trigger_config.message_class.
func DefaultMessageClass(triggerType string) string {
	switch triggerType {
	case TriggerInvoiceOverdue, TriggerAppointment:
		return ClassTransactional
	}
	return ClassNonTransactional
}

// Status is an execution's status, stored in automation_execution_logs.status.
type Status string

// Execution statuses.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusSkipped   Status = "skipped"
	StatusCancelled Status = "cancelled"
)

// OutcomeStatus is what a function reports for a claimed execution
// (Outcome.Status).
type OutcomeStatus string

// Outcome statuses.
const (
	OutcomeCompleted OutcomeStatus = "completed" // every step done
	OutcomeSkipped   OutcomeStatus = "skipped"   // nothing to do any more (paid, opted out, no recipient, inactive)
	OutcomeRetry     OutcomeStatus = "retry"     // transient failure: back off, or fail when out of attempts (Outcome.Deferred: no attempt spent)
	OutcomeFailed    OutcomeStatus = "failed"    // permanent failure: never retried
	OutcomeSnoozed   OutcomeStatus = "snoozed"   // a delay step: resume at StepIndex at SnoozeUntil, no attempt consumed
)

// Step types of a workflow.
const (
	StepSendEmail = "send_email"
	StepSendSMS   = "send_sms"
	StepDelay     = "delay"
)

// Channel is the channel of a delivery (automation_deliveries.channel).
type Channel string

// Channels of a delivery.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// DeliveryStatus is a delivery's status in automation_deliveries.status.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliverySending DeliveryStatus = "sending"
	DeliverySent    DeliveryStatus = "sent"
	DeliveryFailed  DeliveryStatus = "failed"
	DeliveryUnknown DeliveryStatus = "unknown"
)

// BeginState is the answer of automation_begin_deliveries for one delivery
// (DeliveryBegun.State).
type BeginState string

// Answers of automation_begin_deliveries.
const (
	BeginNew       BeginState = "new"       // recorded now (or re-armed after a retryable failure): send it
	BeginSent      BeginState = "sent"      // already sent: never send again
	BeginAmbiguous BeginState = "ambiguous" // began before and never finished: the provider may have it; do not send
	BeginFailed    BeginState = "failed"    // failed permanently before: do not send
	BeginStale     BeginState = "stale"     // the lease token no longer holds: stop working on this execution
	BeginInvalid   BeginState = "invalid"   // the intent cannot be recorded (no key, unknown channel, empty recipient): never send it
	BeginExpired   BeginState = "expired"   // the execution's deadline has passed: nothing recorded, never send it
)

// Code is an error code: written to automation_execution_logs.error_code
// and automation_deliveries.error_code, and carried by an *Error. The
// codes of a provider failure (shared/notify) are codes too; the engine
// maps a code to a report outcome, shared/lambdaurl and
// shared/providerevents a request's to an HTTP status.
type Code string

// Error codes of an execution's outcome or a delivery.
const (
	CodeNoRecipient Code = "no_recipient"
	CodeOptedOut    Code = "opted_out"
	// CodeSuppressed: every recipient's address is suppressed for the
	// organisation (a hard bounce or a complaint).
	CodeSuppressed       Code = "suppressed"
	CodeInvoiceSettled   Code = "invoice_settled"
	CodeWorkflowInactive Code = "workflow_inactive"
	CodeSubjectGone      Code = "subject_gone"
	CodeSuperseded       Code = "superseded" // the premise moved on: appointment rescheduled, job active again, newer service
	CodeExpired          Code = "expired"
	// CodeDeadline: stopped before the function's deadline (an outcome
	// "retry", deferred).
	CodeDeadline          Code = "deadline"
	CodeTemplate          Code = "template_error"
	CodeContentTooLarge   Code = "content_too_large" // a rendered part over its limit (shared/render): failed, not retried
	CodeInvalidRecipient  Code = "invalid_recipient"
	CodeProviderRejected  Code = "provider_rejected"
	CodeProviderRetryable Code = "provider_unavailable"
	// CodeProviderAuth: the provider refused our credentials or sender
	// configuration (401/403, a from-number not valid for the account):
	// an operator's fix, so retried.
	CodeProviderAuth Code = "provider_auth"
	CodeRateLimited  Code = "rate_limited" // a provider's 429
	CodeNetwork      Code = "network"      // no answer from a provider
	CodeTimeout      Code = "timeout"      // no answer in time, or a 408
	// CodeProviderError: a provider failure nobody classified (an error
	// without a code): retried, and it spends an attempt.
	CodeProviderError   Code = "provider_error"
	CodeDeliveryUnknown Code = "delivery_unknown"
	CodeMaxAttempts     Code = "max_attempts"
	// CodeMaxDeferrals: deferred more often than automation_settings.max_deferrals.
	CodeMaxDeferrals Code = "max_deferrals"
	CodeConfig       Code = "config_error"
	CodeInternal     Code = "internal_error"
	CodeSourceError  Code = "source_error" // a source view could not deliver the execution's rows (set by automation_claim)
	// CodeInvalidWorkflow: the claimed workflow breaks the workflow rules
	// (shared/workflow; e.g. written before validation or with the trigger
	// disabled). The message lists its problems. Failed, never retried.
	CodeInvalidWorkflow Code = "invalid_workflow"
	// CodeInvalidExecution: the claimed document cannot be read (a value of
	// the wrong JSON type). The message names the field path, never the
	// value. Failed, never retried.
	CodeInvalidExecution Code = "invalid_execution"
	// CodeSettledNotSent: an operator settled an unknown delivery as not
	// sent (automation_settle_delivery); on the delivery, and on a
	// completed execution that has no unknown delivery left.
	CodeSettledNotSent Code = "settled_not_sent"
)

// Codes of a rejected request (shared/webhook, shared/providerevents),
// mapped to an HTTP status by the package that answers it (shared/lambdaurl,
// shared/providerevents).
const (
	CodeUnauthorized     Code = "unauthorized"       // a missing, stale or wrong signature: 401
	CodeTooLarge         Code = "too_large"          // a body over the limit: 413
	CodeInvalidRequest   Code = "invalid_request"    // a body that is no valid request: 400
	CodeNotFound         Code = "not_found"          // no such path, or a provider not configured: 404
	CodeMethodNotAllowed Code = "method_not_allowed" // not a POST: 405
	CodeUnavailable      Code = "unavailable"        // not recorded now; the caller tries again later: 503
)

// Step is one step of a workflow. Empty Subject/Body/HTML mean "use the
// action's default template".
type Step struct {
	Type    string `json:"type"`
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"` // plain text (email text part, or SMS text)
	HTML    string `json:"html,omitempty"` // optional HTML body of an email
	Minutes int    `json:"minutes,omitempty"`
	Hours   int    `json:"hours,omitempty"`
	Days    int    `json:"days,omitempty"`
}

// Delay returns the duration of a delay step.
func (s Step) Delay() time.Duration {
	return time.Duration(s.Minutes)*time.Minute + time.Duration(s.Hours)*time.Hour + time.Duration(s.Days)*24*time.Hour
}

// Execution is the claimed automation_execution_logs row.
type Execution struct {
	ID             uuid.UUID       `json:"id"`
	WorkflowID     uuid.UUID       `json:"workflow_id"`
	OrganizationID uuid.UUID       `json:"organization_id"`
	Action         string          `json:"action"`
	TriggerType    string          `json:"trigger_type"`
	OccurrenceKey  string          `json:"occurrence_key"`
	SubjectType    string          `json:"subject_type"` // invoice | job | client | organization
	SubjectID      string          `json:"subject_id"`   // the subject's id as text (any id type of the app); "" = none
	ClientID       string          `json:"client_id"`    // the client's id as text; "" = none (organisation-addressed)
	Attempt        int             `json:"attempt"`      // 1 on the first claim
	MaxAttempts    int             `json:"max_attempts"`
	StepIndex      int             `json:"step_index"`
	DeadlineAt     *time.Time      `json:"deadline_at"`
	LeaseToken     uuid.UUID       `json:"lease_token"`
	LeaseExpiresAt time.Time       `json:"lease_expires_at"`
	TriggerData    json.RawMessage `json:"trigger_data,omitempty"`
}

// Workflow is the execution's workflow with its steps.
type Workflow struct {
	ID            uuid.UUID       `json:"id"`
	Name          string          `json:"name"`
	TriggerType   string          `json:"trigger_type"`
	TriggerConfig json.RawMessage `json:"trigger_config,omitempty"`
	IsActive      bool            `json:"is_active"`
	Steps         []Step          `json:"steps"`
	// MessageClass is ClassTransactional or ClassNonTransactional; ""
	// (a database before 20261202001810): DefaultMessageClass.
	MessageClass string `json:"message_class,omitempty"`
}

// Suppression reasons of Blocked.
const (
	BlockedOptedOut   = "opted_out"  // an SMS STOP: no SMS of any class
	BlockedBounced    = "bounced"    // a hard bounce
	BlockedComplained = "complained" // a spam complaint
)

// Blocked is one of the organisation's suppressed addresses that may be the
// client's (a candidate: the engine compares the exact address it sends to).
type Blocked struct {
	Channel Channel `json:"channel"`
	Address string  `json:"address"`
	Reason  string  `json:"reason"` // Blocked* constants
}

// Consent is what the client accepts, from dueflow's own tables.
type Consent struct {
	OptedOut []Channel `json:"opted_out"` // channels opted out of (non-transactional messages)
	Blocked  []Blocked `json:"blocked"`
	SMSTold  []string  `json:"sms_told"` // E.164 numbers told how to opt out in the last 30 days
}

// Organization is the tenant with its sender identity, time zone and window.
type Organization struct {
	ID              uuid.UUID `json:"id"`
	Name            string    `json:"name"`
	Timezone        string    `json:"timezone"`     // IANA name
	CountryCode     string    `json:"country_code"` // ISO 3166-1 alpha-2, default region for phone numbers
	SenderName      string    `json:"sender_name"`
	SenderEmail     string    `json:"sender_email"`
	ReplyToEmail    string    `json:"reply_to_email"`
	Phone           string    `json:"phone"`
	PortalURL       string    `json:"portal_url"`
	SendWindowStart string    `json:"send_window_start"` // "09:00:00", local time
	SendWindowEnd   string    `json:"send_window_end"`   // "17:00:00", local time
	// Locale is the BCP 47 locale its messages are formatted in ("en-GB",
	// "fr-CA"); "" or unusable: the country's default (shared/locale).
	Locale string `json:"locale"`
	// Address is its postal address for message footers ("" = none).
	Address string `json:"address"`
}

// Client is the customer a reminder goes to.
type Client struct {
	ID          string `json:"id"` // the app's id as text (uuid, bigint, 'C-2001', ...)
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	EmailOptOut bool   `json:"email_opt_out"`
	SMSOptOut   bool   `json:"sms_opt_out"`
}

// Invoice is the subject of an invoice reminder.
type Invoice struct {
	ID        string `json:"id"` // the app's id as text
	Number    string `json:"number"`
	Status    string `json:"status"`   // draft | sent | overdue | paid | cancelled | void
	DueDate   string `json:"due_date"` // YYYY-MM-DD
	Total     string `json:"total"`    // decimal as text, e.g. "1250.00"
	Balance   string `json:"balance"`
	Currency  string `json:"currency"` // ISO 4217
	PortalURL string `json:"portal_url"`
	// PayURL is the invoice's own payment link when the source view has
	// one ("" = none: the portal link is the pay link).
	PayURL string `json:"pay_url"`
}

// Job is the subject of maintenance, stale-job and appointment reminders.
type Job struct {
	ID             string     `json:"id"` // the app's id as text
	Title          string     `json:"title"`
	JobType        string     `json:"job_type"`
	Status         string     `json:"status"` // scheduled | in_progress | completed | cancelled
	ScheduledStart *time.Time `json:"scheduled_start"`
	CompletedAt    *time.Time `json:"completed_at"`
	Address        string     `json:"address"`
}

// Delivery is a row of the automation_deliveries ledger.
type Delivery struct {
	StepIndex         int            `json:"step_index"`
	Channel           Channel        `json:"channel"`
	Recipient         string         `json:"recipient"`
	Provider          string         `json:"provider"`
	IdempotencyKey    string         `json:"idempotency_key"`
	Status            DeliveryStatus `json:"status"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
}

// Claimed is one document returned by automation_claim.
type Claimed struct {
	Execution    Execution    `json:"execution"`
	Workflow     Workflow     `json:"workflow"`
	Organization Organization `json:"organization"`
	Client       *Client      `json:"client"`
	Invoice      *Invoice     `json:"invoice"`
	Job          *Job         `json:"job"`
	Deliveries   []Delivery   `json:"deliveries"`
	Consent      *Consent     `json:"consent"` // nil: no client (or a database before 20261202001810)
	// Figures holds the organisation's figures for scheduled executions
	// (nil for the others).
	Figures *OrgFigures `json:"figures,omitempty"`
}

// OrgFigures is an organisation's figures at claim time, for the scheduled
// "summary" message.
type OrgFigures struct {
	OpenInvoices           int       `json:"open_invoices"`    // sent or overdue with a balance
	OverdueInvoices        int       `json:"overdue_invoices"` // of them, overdue
	OpenBalances           []Balance `json:"open_balances"`    // their balance per currency
	RemindersSentYesterday int       `json:"reminders_sent_yesterday"`
}

// Balance is an amount in one currency.
type Balance struct {
	Currency string `json:"currency"` // ISO 4217
	Amount   string `json:"amount"`   // decimal as text
}

// ClaimRequest holds the named arguments of automation_claim.
type ClaimRequest struct {
	Action       string      `json:"p_action"`
	IDs          []uuid.UUID `json:"p_ids"`
	Limit        int         `json:"p_limit"`
	LeaseSeconds int         `json:"p_lease_seconds"`
}

// DeliveryIntent is one element of automation_begin_deliveries' p_deliveries.
type DeliveryIntent struct {
	ExecutionID    uuid.UUID `json:"execution_id"`
	LeaseToken     uuid.UUID `json:"lease_token"`
	StepIndex      int       `json:"step_index"`
	Channel        Channel   `json:"channel"`
	Recipient      string    `json:"recipient"`
	Provider       string    `json:"provider"`
	IdempotencyKey string    `json:"idempotency_key"`
	// Sender is the number or address the message goes from, when known.
	Sender string `json:"sender,omitempty"`
	// OptOutNotice: the SMS carries the opt-out instruction (recorded as
	// told once sent).
	OptOutNotice bool `json:"opt_out_notice,omitempty"`
}

// DeliveryBegun is one element of automation_begin_deliveries' answer.
type DeliveryBegun struct {
	IdempotencyKey    string     `json:"idempotency_key"`
	State             BeginState `json:"state"`
	ProviderMessageID string     `json:"provider_message_id,omitempty"`
}

// DeliveryResult finishes a delivery in automation_report.
type DeliveryResult struct {
	IdempotencyKey    string         `json:"idempotency_key"`
	Status            DeliveryStatus `json:"status"` // sent | failed | unknown
	Provider          string         `json:"provider,omitempty"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
	ErrorCode         Code           `json:"error_code,omitempty"`
	ErrorMessage      string         `json:"error_message,omitempty"`
	Retryable         bool           `json:"retryable,omitempty"` // a failed delivery that may be re-armed on a later attempt
}

// DeliveryFinished is one element of automation_record_deliveries'
// p_finished: a delivery's provider answer recorded before the report,
// fenced by the lease of its execution like the report.
type DeliveryFinished struct {
	ExecutionID uuid.UUID `json:"execution_id"`
	LeaseToken  uuid.UUID `json:"lease_token"`
	DeliveryResult
}

// Outcome is one element of automation_report's p_outcomes.
type Outcome struct {
	ExecutionID    uuid.UUID     `json:"execution_id"`
	LeaseToken     uuid.UUID     `json:"lease_token"`
	Status         OutcomeStatus `json:"status"`
	ErrorCode      Code          `json:"error_code,omitempty"`
	ErrorMessage   string        `json:"error_message,omitempty"`
	StepIndex      int           `json:"step_index"`                    // for snoozed: the step to resume at
	SnoozeUntil    *time.Time    `json:"snooze_until,omitempty"`        // for snoozed
	RetryAfterSecs int           `json:"retry_after_seconds,omitempty"` // for retry: a provider's hint, 0 = backoff
	// Deferred marks a retry caused by infrastructure trouble, not by the
	// message (deadline cut, database, provider outage, rate limit): the
	// database gives the attempt back and counts a deferral instead.
	Deferred        bool             `json:"deferred,omitempty"`
	ActionsExecuted int              `json:"actions_executed"`
	Deliveries      []DeliveryResult `json:"deliveries,omitempty"`
}

// Reported is one element of automation_report's answer.
type Reported struct {
	ExecutionID uuid.UUID `json:"execution_id"`
	Applied     bool      `json:"applied"`
	Status      Status    `json:"status"`           // the execution's status after the report
	Reason      string    `json:"reason,omitempty"` // why not applied: stale_lease | not_found | invalid
}

// IdempotencyKey is the stable key of the delivery of one step of one
// execution on one channel: the same across attempts, so the ledger can tell
// a re-send.
func IdempotencyKey(executionID uuid.UUID, stepIndex int, channel Channel) string {
	return executionID.String() + ":" + strconv.Itoa(stepIndex) + ":" + string(channel)
}

// Request is the body pg_net posts to a function.
type Request struct {
	Action       string      `json:"action"`
	ExecutionIDs []uuid.UUID `json:"execution_ids"`
}

// Summary is the JSON a function answers with (kept by pg_net in
// net._http_response.content).
type Summary struct {
	Action    string `json:"action"`
	Requested int    `json:"requested"`
	Claimed   int    `json:"claimed"`
	Completed int    `json:"completed"`
	Skipped   int    `json:"skipped"`
	Retried   int    `json:"retried"`  // retries that spent an attempt
	Deferred  int    `json:"deferred"` // retries deferred without spending one (Outcome.Deferred)
	Failed    int    `json:"failed"`
	Snoozed   int    `json:"snoozed"`
	Stale     int    `json:"stale"` // outcomes refused because the lease had expired
}
