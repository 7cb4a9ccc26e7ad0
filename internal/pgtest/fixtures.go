package pgtest

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

// DB is what the fixtures need: *pgxpool.Pool, *pgx.Conn and pgx.Tx have it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Org describes an organisation fixture; zero values take the table defaults
// (UTC, window 09:00-17:00).
type Org struct {
	Name        string
	Timezone    string
	WindowStart string // "09:00"
	WindowEnd   string // "17:00"
	SenderEmail string
}

// AllDay is a send window covering the whole day, for tests that do not
// exercise snapping.
const (
	AllDayStart = "00:00"
	AllDayEnd   = "23:59:59.999999"
)

// CreateOrg inserts an organisation and returns its id.
func CreateOrg(t testing.TB, db DB, o Org) uuid.UUID {
	t.Helper()
	if o.Name == "" {
		o.Name = "Org " + uuid.NewString()[:8]
	}
	if o.Timezone == "" {
		o.Timezone = "UTC"
	}
	if o.WindowStart == "" {
		o.WindowStart = "09:00"
	}
	if o.WindowEnd == "" {
		o.WindowEnd = "17:00"
	}
	if o.SenderEmail == "" {
		o.SenderEmail = "office@" + uuid.NewString()[:8] + ".test"
	}
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		insert into organizations (name, timezone, send_window_start, send_window_end, sender_name, sender_email, phone, portal_url)
		values ($1, $2, $3::time, $4::time, $1, $5, '+15555550100', 'https://portal.test/' || $1)
		returning id`, o.Name, o.Timezone, o.WindowStart, o.WindowEnd, o.SenderEmail).Scan(&id)
	if err != nil {
		t.Fatalf("pgtest: create org: %v", err)
	}
	return id
}

// Client describes a client fixture (first name Ada, last name Client).
type Client struct {
	Org   uuid.UUID // the client's organisation; required
	Email string    // "" = NULL (no email)
	Phone string    // "" = NULL (no phone)
}

// CreateClient inserts a client and returns its id.
func CreateClient(t testing.TB, db DB, c Client) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		insert into clients (organization_id, first_name, last_name, email, phone)
		values ($1, 'Ada', 'Client', nullif($2, ''), nullif($3, '')) returning id`, c.Org, c.Email, c.Phone).Scan(&id)
	if err != nil {
		t.Fatalf("pgtest: create client: %v", err)
	}
	return id
}

// Invoice describes an invoice fixture (a random number INV-xxxxxx, portal
// URL https://portal.test/inv).
type Invoice struct {
	Org       uuid.UUID // the invoice's organisation; required
	Client    uuid.UUID // the invoice's client; required
	Status    string    // "" = "sent"
	DueInDays int       // due date relative to today (UTC); negative = past, 0 = today
	Amount    string    // total and balance (numeric text); "" = "10"
}

// CreateInvoice inserts an invoice and returns its id.
func CreateInvoice(t testing.TB, db DB, inv Invoice) uuid.UUID {
	t.Helper()
	if inv.Status == "" {
		inv.Status = "sent"
	}
	if inv.Amount == "" {
		inv.Amount = "10"
	}
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		insert into invoices (organization_id, client_id, number, status, due_date, total, balance, portal_url)
		values ($1, $2, 'INV-' || substr(md5(random()::text), 1, 6), $3, current_date + $4::int, $5::numeric, $5::numeric,
		        'https://portal.test/inv')
		returning id`, inv.Org, inv.Client, inv.Status, inv.DueInDays, inv.Amount).Scan(&id)
	if err != nil {
		t.Fatalf("pgtest: create invoice: %v", err)
	}
	return id
}

// Workflow describes an active workflow fixture, named "<trigger> workflow".
type Workflow struct {
	Org     uuid.UUID // the workflow's organisation; required
	Trigger string    // trigger_type, e.g. "invoice_overdue"; required
	Config  string    // trigger_config as JSON; "" = {}
	Steps   string    // steps as JSON; "" = []
}

// CreateWorkflow inserts an active workflow and returns its id.
func CreateWorkflow(t testing.TB, db DB, w Workflow) uuid.UUID {
	t.Helper()
	if w.Config == "" {
		w.Config = "{}"
	}
	if w.Steps == "" {
		w.Steps = "[]"
	}
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		insert into automation_workflows (organization_id, name, trigger_type, trigger_config, steps)
		values ($1, $2 || ' workflow', $2, $3::jsonb, $4::jsonb) returning id`, w.Org, w.Trigger, w.Config, w.Steps).Scan(&id)
	if err != nil {
		t.Fatalf("pgtest: create workflow: %v", err)
	}
	return id
}

// CreateUnvalidatedWorkflow inserts an active workflow the way rows written
// before validation (or with automation_workflows_validate disabled) are:
// whatever its configuration, with problems NULL.
func CreateUnvalidatedWorkflow(t testing.TB, db pgcluster.Beginner, w Workflow) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatalf("pgtest: create unvalidated workflow: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `alter table automation_workflows disable trigger automation_workflows_validate`); err != nil {
		t.Fatalf("pgtest: create unvalidated workflow: disable validation: %v", err)
	}
	id := CreateWorkflow(t, tx, w)
	if _, err := tx.Exec(ctx, `alter table automation_workflows enable trigger automation_workflows_validate`); err != nil {
		t.Fatalf("pgtest: create unvalidated workflow: enable validation: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("pgtest: create unvalidated workflow: %v", err)
	}
	return id
}

// SetSecret stores the webhook signing secret in the Vault stand-in.
func SetSecret(t testing.TB, db DB, name, value string) {
	t.Helper()
	_, err := db.Exec(context.Background(), `
		with upd as (update vault.secrets set secret = $2, updated_at = now() where name = $1 returning 1)
		insert into vault.secrets (name, secret) select $1, $2 where not exists (select 1 from upd)`, name, value)
	if err != nil {
		t.Fatalf("pgtest: set secret: %v", err)
	}
}

// SetEndpoint registers the function URL of an action.
func SetEndpoint(t testing.TB, db DB, action, url string, batchSize int) {
	t.Helper()
	_, err := db.Exec(context.Background(), `
		insert into automation_endpoints (action, url, batch_size) values ($1, $2, $3)
		on conflict (action) do update set url = excluded.url, batch_size = excluded.batch_size, enabled = true`,
		action, url, batchSize)
	if err != nil {
		t.Fatalf("pgtest: set endpoint: %v", err)
	}
}

// AllDayOrg inserts an organisation whose send window covers the whole day
// and returns its id.
func AllDayOrg(t testing.TB, db DB) uuid.UUID {
	t.Helper()
	return CreateOrg(t, db, Org{WindowStart: AllDayStart, WindowEnd: AllDayEnd})
}

// OverdueInvoices creates an all-day organisation, a client (email and
// phone), n invoices three days overdue and an invoice_overdue workflow
// (reminder days 1, 7, 14, 30; no steps), runs check_overdue_invoices and
// returns the organisation, the workflow and its n executions in creation
// order.
func OverdueInvoices(t testing.TB, db DB, n int) (org, workflow uuid.UUID, execs []uuid.UUID) {
	t.Helper()
	org = AllDayOrg(t, db)
	client := CreateClient(t, db, Client{Org: org, Email: "ada@client.test", Phone: "+15555550123"})
	for i := 0; i < n; i++ {
		CreateInvoice(t, db, Invoice{Org: org, Client: client, DueInDays: -3})
	}
	workflow = CreateWorkflow(t, db, Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1,7,14,30]}`})
	if got := Int(t, db, `select check_overdue_invoices()`); got != n {
		t.Fatalf("pgtest: check_overdue_invoices created %d executions, want %d", got, n)
	}
	return org, workflow, ExecutionIDs(t, db, workflow)
}
