package migrations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestZZExplainScratch(t *testing.T) {
	if os.Getenv("ZZ_EXPLAIN") == "" {
		t.Skip()
	}
	db, dsn := pgtest.NewDB(t)
	ctx := context.Background()
	org := "a0000000-0000-4000-8000-00000000000a"
	n := 10000
	pgtest.Exec(t, db, `insert into organizations (id, name, timezone, send_window_start, send_window_end, sender_name, sender_email)
		values ($1, 'Acme Plumbing', 'America/Chicago', '00:00', '23:59:59.999999', 'Acme Plumbing', 'billing@acme.test')`, org)
	pgtest.Exec(t, db, `insert into clients (id, organization_id, first_name, email)
		select ('c1000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, $1, 'Client ' || g, 'client' || g || '@example.com'
		from generate_series(1, $2) g`, org, n)
	pgtest.Exec(t, db, `insert into invoices (organization_id, client_id, number, status, due_date, total, balance)
		select $1, ('c1000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'INV-' || g, 'sent',
		       (now() at time zone 'America/Chicago')::date - 1, 100, 100
		from generate_series(1, $2) g`, org, n)
	pgtest.Exec(t, db, `insert into automation_workflows (organization_id, name, trigger_type, trigger_config, steps)
		values ($1, 'Overdue invoices', 'invoice_overdue', '{"days_after_due":[1]}',
		 jsonb_build_array(jsonb_build_object('type', 'send_email', 'subject', 'x', 'body', 'y')))`, org)
	pgtest.Exec(t, db, `select check_overdue_invoices()`)
	pgtest.Exec(t, db, `update automation_execution_logs set next_attempt_at = now()`)
	pgtest.Exec(t, db, `vacuum analyze automation_execution_logs`)
	cfg, _ := pgx.ParseConfig(dsn)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { fmt.Println("NOTICE:", n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_ = db
	var _ *pgxpool.Pool
	for _, s := range []string{"load 'auto_explain'", "set auto_explain.log_min_duration = 0", "set auto_explain.log_analyze = on",
		"set auto_explain.log_buffers = on", "set auto_explain.log_nested_statements = on", "set auto_explain.log_level = notice"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 2; round++ {
		fmt.Println("===== ROUND", round)
		var ids []string
		rows, _ := conn.Query(ctx, `select id::text from automation_execution_logs where status = 'pending' order by id limit 100`)
		for rows.Next() {
			var s string
			rows.Scan(&s)
			ids = append(ids, s)
		}
		rows.Close()
		fmt.Println("===== CLAIM")
		var docs []byte
		if err := conn.QueryRow(ctx, `select coalesce(jsonb_agg(d), '[]') from automation_claim('invoice-reminder', $1::uuid[], 100, 300) d`, ids).Scan(&docs); err != nil {
			t.Fatal(err)
		}
		var cl []struct {
			Execution struct {
				ID    string `json:"id"`
				Lease string `json:"lease_token"`
			} `json:"execution"`
		}
		json.Unmarshal(docs, &cl)
		var intents []map[string]any
		for i, c := range cl[:16] {
			intents = append(intents, map[string]any{"execution_id": c.Execution.ID, "lease_token": c.Execution.Lease, "step_index": 0,
				"channel": "email", "recipient": fmt.Sprintf("c%d@example.com", i), "provider": "smtp", "idempotency_key": c.Execution.ID + ":0:email"})
		}
		b, _ := json.Marshal(intents)
		fmt.Println("===== RECORD")
		var out []byte
		if err := conn.QueryRow(ctx, `select automation_record_deliveries('[]', $1::jsonb)`, string(b)).Scan(&out); err != nil {
			t.Fatal(err)
		}
		var fin []map[string]any
		for _, c := range cl[:16] {
			fin = append(fin, map[string]any{"execution_id": c.Execution.ID, "lease_token": c.Execution.Lease, "idempotency_key": c.Execution.ID + ":0:email", "status": "sent", "provider": "smtp", "provider_message_id": "m"})
		}
		b2, _ := json.Marshal(fin)
		fmt.Println("===== RECORD2")
		if err := conn.QueryRow(ctx, `select automation_record_deliveries($1::jsonb, '[]')`, string(b2)).Scan(&out); err != nil {
			t.Fatal(err)
		}
		var outs []map[string]any
		for _, c := range cl {
			outs = append(outs, map[string]any{"execution_id": c.Execution.ID, "lease_token": c.Execution.Lease, "status": "completed", "actions_executed": 1})
		}
		b3, _ := json.Marshal(outs)
		fmt.Println("===== REPORT")
		if err := conn.QueryRow(ctx, `select automation_report($1::jsonb)`, string(b3)).Scan(&out); err != nil {
			t.Fatal(err)
		}
	}
}
