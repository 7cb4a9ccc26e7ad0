// Package demodata seeds the demo's three organisations (three time zones)
// with clients, jobs, invoices and one workflow per trigger type, such that
// the first automation cycle creates a known set of executions whatever the
// hour: every demo organisation's send window is the whole local day
// (00:00 to 23:59:59.999999), and every date is computed from the seed time
// in the organisation's own time zone.
//
// Seed is a reset: it deletes everything belonging to the demo
// organisations (fixed ids) and inserts them again, in one transaction, so
// re-running the demo against an existing database starts from the same
// state.
package demodata

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Send window of every demo organisation: the whole local day, so the demo
// sends at any hour. (Production organisations keep 09:00 to 17:00.)
const (
	WindowStart = "00:00:00"
	WindowEnd   = "23:59:59.999999"
)

// id returns the fixed demo uuid number n of kind k (1 org, 2 client,
// 3 job, 4 invoice, 5 workflow): d0e00000-000k-4000-8000-<n>.
func id(k, n int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("d0e00000-%04d-4000-8000-%012d", k, n))
}

// Org is a demo organisation.
type Org struct {
	ID       uuid.UUID
	Name     string
	Timezone string
	Country  string
	Sender   string // sender email
	Phone    string
	Portal   string
	Locale   string // BCP 47; "" = the country's default
	Address  string // postal address for the footer
}

// Client is a demo client.
type Client struct {
	ID          uuid.UUID
	Org         uuid.UUID
	First, Last string
	Email       string // "" = none
	Phone       string // "" = none
	EmailOptOut bool
	SMSOptOut   bool
}

// Job is a demo job. Times are relative to the seed time.
type Job struct {
	ID          uuid.UUID
	Org         uuid.UUID
	Client      uuid.UUID
	Title       string
	JobType     string
	Status      string
	StartIn     time.Duration // scheduled_start = now + StartIn
	CompletedAt time.Duration // completed_at = now - CompletedAt (0 = not completed)
	IdleFor     time.Duration // updated_at = now - IdleFor
}

// Invoice is a demo invoice; DaysOverdue is counted in the organisation's
// local calendar (due_date = local today - DaysOverdue).
type Invoice struct {
	ID          uuid.UUID
	Org         uuid.UUID
	Client      uuid.UUID
	Number      string
	Status      string
	DaysOverdue int
	Total       string
	Balance     string
	Currency    string
}

// Workflow is a demo workflow.
type Workflow struct {
	ID            uuid.UUID
	Org           uuid.UUID
	Name          string
	TriggerType   string
	TriggerConfig map[string]any
	Steps         []map[string]any
}

// Dataset is everything Seed inserts.
type Dataset struct {
	Orgs      []Org
	Clients   []Client
	Jobs      []Job
	Invoices  []Invoice
	Workflows []Workflow
}

// Organisation ids of the demo.
var (
	OrgNewYork = id(1, 1)
	OrgLondon  = id(1, 2)
	OrgSydney  = id(1, 3)
)

// OrgIDs lists the demo organisations.
var OrgIDs = []uuid.UUID{OrgNewYork, OrgLondon, OrgSydney}

const day = 24 * time.Hour

func email(subject, body string) map[string]any {
	return map[string]any{"type": "send_email", "subject": subject, "body": body}
}

func sms(body string) map[string]any { return map[string]any{"type": "send_sms", "body": body} }

// Data returns the demo dataset. It is the same on every call: times are
// offsets applied by Seed.
//
// Long: the demo dataset as one literal
func Data() Dataset {
	d := Dataset{
		Orgs: []Org{
			{OrgNewYork, "Brightside Plumbing", "America/New_York", "US", "office@brightside-plumbing.test", "+12125550100", "https://portal.brightside-plumbing.test", "", "350 Fifth Avenue, New York, NY 10118"},
			{OrgLondon, "Thames Heating & Cooling", "Europe/London", "GB", "hello@thames-heating.test", "+442079460100", "https://portal.thames-heating.test", "en-GB", "10 Riverside Walk, London SE1 9PX"},
			{OrgSydney, "Harbour Electrical", "Australia/Sydney", "AU", "jobs@harbour-electrical.test", "+61491570100", "https://portal.harbour-electrical.test", "en-AU", ""}, // no address: the footer leaves it out
		},
	}
	// New York: the full set, including the edge cases.
	ny := OrgNewYork
	alice, bob, carla, dan, erin := id(2, 1), id(2, 2), id(2, 3), id(2, 4), id(2, 5)
	d.Clients = append(d.Clients,
		Client{alice, ny, "Alice", "Walker", "alice.walker@mail.test", "+12125550111", false, false},
		Client{bob, ny, "Bob", "Nguyen", "bob.nguyen@mail.test", "", false, false},           // email only
		Client{carla, ny, "Carla", "Diaz", "", "+12125550113", false, false},                 // phone only
		Client{dan, ny, "Dan", "Okafor", "dan.okafor@mail.test", "+12125550114", true, true}, // opted out of both
		Client{erin, ny, "Erin", "Price", "", "", false, false},                              // no contact at all
	)
	d.Invoices = append(d.Invoices,
		Invoice{id(4, 1), ny, alice, "BP-1001", "overdue", 3, "250.00", "250.00", "USD"}, // 1-day reminder
		Invoice{id(4, 2), ny, bob, "BP-1002", "sent", 10, "1200.00", "600.00", "USD"},    // 7-day reminder
		Invoice{id(4, 3), ny, dan, "BP-1003", "overdue", 15, "90.00", "90.00", "USD"},    // 14-day, opted out: skipped
		Invoice{id(4, 4), ny, alice, "BP-1004", "paid", 20, "400.00", "0.00", "USD"},     // paid: no reminder
		Invoice{id(4, 5), ny, erin, "BP-1005", "overdue", 2, "75.50", "75.50", "USD"},    // no recipient: skipped
		Invoice{id(4, 6), ny, carla, "BP-1006", "sent", 0, "300.00", "300.00", "USD"},    // due today: not overdue yet
	)
	d.Jobs = append(d.Jobs,
		Job{id(3, 1), ny, bob, "Annual boiler service", "boiler_service", "completed", 0, 210 * day, 210 * day}, // maintenance due (7 months)
		Job{id(3, 2), ny, carla, "Water heater flush", "boiler_service", "completed", 0, 240 * day, 240 * day},  // maintenance due, SMS only
		Job{id(3, 3), ny, alice, "Kitchen repipe", "repair", "in_progress", -12 * day, 0, 10 * day},             // stale (10 days idle)
		Job{id(3, 4), ny, alice, "Leak inspection", "inspection", "scheduled", 20 * time.Hour, 0, time.Hour},    // appointment tomorrow
		Job{id(3, 5), ny, dan, "Drain clearing", "repair", "completed", 0, 30 * day, 30 * day},                  // recent service: not due
	)
	d.Workflows = append(d.Workflows,
		Workflow{id(5, 1), ny, "Overdue invoice: email, then SMS a minute later", "invoice_overdue",
			map[string]any{"days_after_due": []int{1, 7, 14, 30}},
			[]map[string]any{
				email("Invoice {{invoice.number}} is overdue", "Hi {{client.first_name}}, invoice {{invoice.number}} ({{invoice.balance}}) is past due. Pay here: {{invoice.portal_url}}"),
				{"type": "delay", "minutes": 1},
				sms("{{organization.name}}: invoice {{invoice.number}} is overdue. {{invoice.portal_url}}"),
			}},
		Workflow{id(5, 2), ny, "Maintenance reminder", "maintenance_due",
			map[string]any{"months_after_service": 6}, []map[string]any{}},
		Workflow{id(5, 3), ny, "Stale job follow-up", "stale_job",
			map[string]any{"days_inactive": 7, "statuses": []string{"scheduled", "in_progress"}}, []map[string]any{}},
		Workflow{id(5, 4), ny, "Appointment reminder", "appointment",
			map[string]any{"hours_before": 24}, []map[string]any{sms(""), email("", "")}},
		Workflow{id(5, 5), ny, "Daily summary", "scheduled",
			map[string]any{"frequency": "daily", "minute": 0, "audience": "organization"}, // hour: set by Seed
			[]map[string]any{email("", "")}},                                              // the default summary: open invoices, reminders sent yesterday
	)

	// London: invoices and maintenance, default templates.
	ldn := OrgLondon
	george, hannah, ian := id(2, 11), id(2, 12), id(2, 13)
	d.Clients = append(d.Clients,
		Client{george, ldn, "George", "Ashby", "george.ashby@mail.test", "+447400900111", false, false},
		Client{hannah, ldn, "Hannah", "Bell", "hannah.bell@mail.test", "", false, false},
		Client{ian, ldn, "Ian", "Ward", "ian.ward.mail.test", "07700 9001", false, false}, // mistyped email (no @) and phone: fails
	)
	d.Invoices = append(d.Invoices,
		Invoice{id(4, 11), ldn, george, "TH-2001", "overdue", 31, "540.00", "540.00", "GBP"}, // 30-day reminder
		Invoice{id(4, 12), ldn, hannah, "TH-2002", "sent", 1, "80.00", "80.00", "GBP"},       // 1-day reminder
		Invoice{id(4, 13), ldn, ian, "TH-2003", "overdue", 8, "120.00", "120.00", "GBP"},     // 7-day reminder: invalid recipient, fails
	)
	d.Jobs = append(d.Jobs,
		Job{id(3, 11), ldn, hannah, "Gas safety check", "gas_safety", "completed", 0, 200 * day, 200 * day}, // maintenance due
	)
	d.Workflows = append(d.Workflows,
		Workflow{id(5, 11), ldn, "Overdue invoice reminder", "invoice_overdue",
			map[string]any{"days_after_due": []int{1, 7, 14, 30}}, []map[string]any{}},
		Workflow{id(5, 12), ldn, "Gas safety due", "maintenance_due",
			map[string]any{"months_after_service": 6, "job_type": "gas_safety"}, []map[string]any{}},
	)

	// Sydney: appointments and a paused workflow.
	syd := OrgSydney
	isla, jack := id(2, 21), id(2, 22)
	d.Clients = append(d.Clients,
		Client{isla, syd, "Isla", "Murray", "isla.murray@mail.test", "+61491570111", false, false},
		Client{jack, syd, "Jack", "Chen", "jack.chen@mail.test", "+61491570112", false, true}, // SMS opt-out only
	)
	d.Jobs = append(d.Jobs,
		Job{id(3, 21), syd, isla, "Switchboard upgrade", "install", "scheduled", 18 * time.Hour, 0, time.Hour}, // appointment tomorrow
		Job{id(3, 22), syd, jack, "Smoke alarm test", "inspection", "scheduled", 22 * time.Hour, 0, time.Hour}, // appointment tomorrow (email only)
		Job{id(3, 23), syd, jack, "Ceiling fan install", "install", "scheduled", 5 * day, 0, time.Hour},        // too far ahead
	)
	d.Invoices = append(d.Invoices,
		Invoice{id(4, 21), syd, isla, "HE-3001", "overdue", 5, "1800.00", "1800.00", "AUD"}, // its workflow is paused: no reminder
	)
	d.Workflows = append(d.Workflows,
		Workflow{id(5, 21), syd, "Appointment reminder", "appointment",
			map[string]any{"hours_before": 24}, []map[string]any{sms(""), email("", "")}},
		Workflow{id(5, 22), syd, "Invoice reminder (paused)", "invoice_overdue",
			map[string]any{"days_after_due": []int{1}}, []map[string]any{}},
	)
	return d
}

// inactive lists the workflows seeded with is_active = false.
var inactive = map[uuid.UUID]bool{id(5, 22): true}

// Expectation is what the first cycle after Seed must create for one workflow.
type Expectation struct {
	WorkflowID  uuid.UUID
	TriggerType string
	Action      string
	Executions  int // rows in automation_execution_logs after one cycle
}

// Expected lists, per demo workflow, how many executions the first cycle
// creates.
func Expected() []Expectation {
	return []Expectation{
		{id(5, 1), "invoice_overdue", "invoice-reminder", 4},  // BP-1001, -1002, -1003 (opted out), -1005 (no recipient)
		{id(5, 2), "maintenance_due", "send-reminder", 2},     // Bob, Carla
		{id(5, 3), "stale_job", "send-reminder", 1},           // Kitchen repipe
		{id(5, 4), "appointment", "send-reminder", 1},         // Leak inspection
		{id(5, 5), "scheduled", "run-workflow", 1},            // one run, to the organisation
		{id(5, 11), "invoice_overdue", "invoice-reminder", 3}, // TH-2001, -2002, -2003 (invalid phone: failed)
		{id(5, 12), "maintenance_due", "send-reminder", 1},
		{id(5, 21), "appointment", "send-reminder", 2},
		{id(5, 22), "invoice_overdue", "invoice-reminder", 0}, // inactive
	}
}

// DB is what Seed needs: a *pgx.Conn, a pgxpool.Pool or a pgx.Tx.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Reset deletes every row of the demo organisations, children first.
func Reset(ctx context.Context, db DB) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("demo reset: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := reset(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("demo reset: commit: %w", err)
	}
	return nil
}

var resetTables = []string{
	"automation_opt_outs",
	"automation_suppressions",
	"automation_sms_notices",
	"automation_deliveries",
	"automation_analytics",
	"automation_schedule_state",
	"automation_execution_logs",
	"automation_workflows",
	"invoices",
	"jobs",
	"clients",
	"organization_members",
}

func reset(ctx context.Context, tx pgx.Tx) error {
	for _, t := range resetTables {
		if _, err := tx.Exec(ctx, `delete from `+t+` where organization_id = any($1)`, OrgIDs); err != nil {
			return fmt.Errorf("demo reset: delete from %s: %w", t, err)
		}
	}
	if _, err := tx.Exec(ctx, `delete from organizations where id = any($1)`, OrgIDs); err != nil {
		return fmt.Errorf("demo reset: delete from organizations: %w", err)
	}
	return nil
}

// Seed resets the demo organisations and inserts Data() with times relative
// to now, in one transaction.
//
// Long: one transaction inserting the dataset table by table in dependency order
func Seed(ctx context.Context, db DB, now time.Time) error {
	d := Data()
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("demo seed: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := reset(ctx, tx); err != nil {
		return err
	}
	tz := map[uuid.UUID]*time.Location{}
	for _, o := range d.Orgs {
		loc, err := time.LoadLocation(o.Timezone)
		if err != nil {
			return fmt.Errorf("demo seed: time zone %s: %w", o.Timezone, err)
		}
		tz[o.ID] = loc
		if _, err := tx.Exec(ctx, `
insert into organizations (id, name, timezone, country_code, send_window_start, send_window_end,
                           sender_name, sender_email, reply_to_email, phone, portal_url, locale, address)
values ($1, $2, $3, $4, $5::time, $6::time, $2, $7, $7, $8, $9, nullif($10, ''), nullif($11, ''))`,
			o.ID, o.Name, o.Timezone, o.Country, WindowStart, WindowEnd, o.Sender, o.Phone, o.Portal, o.Locale, o.Address); err != nil {
			return fmt.Errorf("demo seed: organization %s: %w", o.Name, err)
		}
	}
	for _, c := range d.Clients {
		if _, err := tx.Exec(ctx, `
insert into clients (id, organization_id, first_name, last_name, email, phone, email_opt_out, sms_opt_out, created_at)
values ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''), $7, $8, $9)`,
			c.ID, c.Org, c.First, c.Last, c.Email, c.Phone, c.EmailOptOut, c.SMSOptOut, now.Add(-400*day)); err != nil {
			return fmt.Errorf("demo seed: client %s %s: %w", c.First, c.Last, err)
		}
	}
	for _, j := range d.Jobs {
		var completed *time.Time
		if j.CompletedAt > 0 {
			t := now.Add(-j.CompletedAt)
			completed = &t
		}
		start := now.Add(j.StartIn)
		if completed != nil {
			start = completed.Add(-2 * time.Hour)
		}
		if _, err := tx.Exec(ctx, `
insert into jobs (id, organization_id, client_id, title, job_type, status, scheduled_start, completed_at, address, updated_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			j.ID, j.Org, j.Client, j.Title, j.JobType, j.Status, start, completed, "1 Demo Street", now.Add(-j.IdleFor)); err != nil {
			return fmt.Errorf("demo seed: job %s: %w", j.Title, err)
		}
	}
	for _, in := range d.Invoices {
		y, m, dd := now.In(tz[in.Org]).Date()
		due := time.Date(y, m, dd-in.DaysOverdue, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
		if _, err := tx.Exec(ctx, `
insert into invoices (id, organization_id, client_id, number, status, due_date, total, balance, currency, updated_at)
values ($1, $2, $3, $4, $5, $6::date, $7::numeric, $8::numeric, $9, $10)`,
			in.ID, in.Org, in.Client, in.Number, in.Status, due, in.Total, in.Balance, in.Currency, now.Add(-day)); err != nil {
			return fmt.Errorf("demo seed: invoice %s: %w", in.Number, err)
		}
	}
	for _, w := range d.Workflows {
		if w.TriggerType == "scheduled" {
			// Daily at the local hour the demo was seeded, and due now: the
			// first cycle runs it once, and its next run is about a day
			// away, so a demo run never sees a second one.
			w.TriggerConfig["hour"] = now.In(tz[w.Org]).Hour()
		}
		cfg, err := json.Marshal(w.TriggerConfig)
		if err != nil {
			return fmt.Errorf("demo seed: workflow %s: %w", w.Name, err)
		}
		steps, err := json.Marshal(w.Steps)
		if err != nil {
			return fmt.Errorf("demo seed: workflow %s: %w", w.Name, err)
		}
		if _, err := tx.Exec(ctx, `
insert into automation_workflows (id, organization_id, name, trigger_type, trigger_config, steps, is_active)
values ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)`,
			w.ID, w.Org, w.Name, w.TriggerType, string(cfg), string(steps), !inactive[w.ID]); err != nil {
			return fmt.Errorf("demo seed: workflow %s: %w", w.Name, err)
		}
		if w.TriggerType == "scheduled" && !inactive[w.ID] {
			if _, err := tx.Exec(ctx, `
insert into automation_schedule_state (workflow_id, organization_id, next_run_at, trigger_config, timezone)
select w.id, w.organization_id, $2, w.trigger_config, o.timezone
  from automation_workflows w join organizations o on o.id = w.organization_id
 where w.id = $1`, w.ID, now); err != nil {
				return fmt.Errorf("demo seed: schedule of %s: %w", w.Name, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("demo seed: commit: %w", err)
	}
	return nil
}
