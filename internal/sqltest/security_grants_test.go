package sqltest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// asRole runs fn in a transaction as the given API role with JWT claims for
// user (uuid.Nil = no sub), the way PostgREST does; the transaction is rolled back.
func asRole(t *testing.T, pool *pgxpool.Pool, role string, user uuid.UUID, fn func(tx pgx.Tx) error) error {
	t.Helper()
	tx, err := pool.Begin(bg)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	claims := fmt.Sprintf(`{"role":%q}`, role)
	if user != uuid.Nil {
		claims = fmt.Sprintf(`{"role":%q,"sub":%q}`, role, user)
	}
	pgtest.Exec(t, tx, `select set_config('request.jwt.claims', $1, true)`, claims)
	pgtest.Exec(t, tx, "set local role "+role)
	return fn(tx)
}

// RLS and grants: members read only their organisation's rows; anon and
// authenticated cannot run the RPCs, checks or dispatch, nor read the status view.
func TestRLSAndGrants(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	orgA, _, _, execsA := overdueSetup(t, pool, 2, "10")
	orgB, _, _, execsB := overdueSetup(t, pool, 2, "20")
	require.Len(t, execsA, 1)
	require.Len(t, execsB, 1)
	userA := uuid.New()
	pgtest.Exec(t, pool, `insert into auth.users (id, email) values ($1, 'a@a.test')`, userA)
	pgtest.Exec(t, pool, `insert into organization_members (organization_id, user_id) values ($1, $2)`, orgA, userA)
	pgtest.MakeDue(t, pool)
	got := pgtest.Claim(t, pool, "invoice-reminder", execsB, 10, 60)
	require.Len(t, got, 1)
	b := pgtest.BeginDeliveries(t, pool, deliveryFor(got[0].Execution.ID, got[0].Execution.LeaseToken))
	require.Equal(t, "new", string(b[0].State))
	// a history row of org B (a claim writes none)
	pgtest.Exec(t, pool, `insert into automation_execution_events (execution_id, organization_id, kind, status)
		values ($1, $2, 'status', 'cancelled')`, execsB[0], orgB)

	tables := []string{"organizations", "organization_members", "clients", "invoices", "jobs",
		"automation_workflows", "automation_execution_logs", "automation_execution_events", "automation_deliveries", "automation_schedule_state", "automation_analytics",
		"automation_src_organizations", "automation_src_clients", "automation_src_invoices", "automation_src_jobs"}
	for _, tbl := range tables {
		err := asRole(t, pool, "authenticated", userA, func(tx pgx.Tx) error {
			var other int
			q := fmt.Sprintf(`select count(*) from %s where %s`, tbl, orgCol(tbl))
			if err := tx.QueryRow(bg, q, orgB).Scan(&other); err != nil {
				return err
			}
			assert.Zero(t, other, "%s: org B rows visible to a member of A", tbl)
			return nil
		})
		require.NoError(t, err, tbl)
	}
	// and members do see their own organisation's rows
	require.NoError(t, asRole(t, pool, "authenticated", userA, func(tx pgx.Tx) error {
		var n int
		require.NoError(t, tx.QueryRow(bg, `select count(*) from automation_execution_logs`).Scan(&n))
		assert.Equal(t, 1, n)
		require.NoError(t, tx.QueryRow(bg, `select count(*) from invoices`).Scan(&n))
		assert.Equal(t, 1, n)
		return nil
	}))
	// a user with no membership sees nothing
	require.NoError(t, asRole(t, pool, "authenticated", uuid.New(), func(tx pgx.Tx) error {
		var n int
		require.NoError(t, tx.QueryRow(bg, `select count(*) from automation_execution_logs`).Scan(&n))
		assert.Zero(t, n)
		return nil
	}))
	// members cannot write
	err := asRole(t, pool, "authenticated", userA, func(tx pgx.Tx) error {
		_, err := tx.Exec(bg, `update automation_execution_logs set status = 'completed'`)
		return err
	})
	assert.Error(t, err)

	forbidden := []string{
		`select automation_claim('invoice-reminder', null, 10, 60)`,
		`select automation_claim_preview(gen_random_uuid())`,
		`select automation_begin_deliveries('[]')`,
		`select automation_record_deliveries('[]', '[]')`,
		`select automation_finish_deliveries('[]')`,
		`select automation_settle_delivery(gen_random_uuid(), true, 'x')`,
		`select * from automation_unknown_deliveries`,
		`select automation_report('[]')`,
		`select automation_cancel_execution(gen_random_uuid())`,
		`select automation_retry_execution(gen_random_uuid())`,
		`select check_overdue_invoices()`,
		`select check_automation_triggers()`,
		`select check_maintenance_reminders()`,
		`select process_pending_automations()`,
		`select update_automation_analytics()`,
		`select automation_cleanup()`,
		`select automation_workflow_rules()`,
		`select automation_workflow_problems('scheduled', '{}', '[]')`,
		`select automation_workflow_spec(null::automation_workflows)`,
		`select automation_record_provider_events('[]')`,
		`select * from automation_delivery_health`,
		`select * from automation_provider_events`,
		`select * from automation_cron_status`,
		`select * from automation_endpoints`,
		`select * from vault.decrypted_secrets`,
		`select net.http_post('http://x.test')`,
	}
	// the replaced system's app reads automation_system_health as its users
	// (security_invoker: their organisation's rows only, TestSystemHealth);
	// anon never
	err = asRole(t, pool, "anon", uuid.Nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(bg, `select * from automation_system_health`)
		return err
	})
	require.Error(t, err, "anon may read automation_system_health")
	assert.Contains(t, err.Error(), "permission denied")
	for _, role := range []string{"anon", "authenticated"} {
		for _, q := range forbidden {
			err := asRole(t, pool, role, userA, func(tx pgx.Tx) error {
				_, err := tx.Exec(bg, q)
				return err
			})
			require.Error(t, err, "%s may run %s", role, q)
			assert.Contains(t, err.Error(), "permission denied", "%s: %s", role, q)
		}
		err := asRole(t, pool, role, uuid.Nil, func(tx pgx.Tx) error {
			var n int
			return tx.QueryRow(bg, `select count(*) from automation_execution_logs`).Scan(&n)
		})
		if role == "anon" {
			assert.Error(t, err, "anon reads no automation table")
		}
	}
	// the service role runs all of it
	for _, q := range forbidden[:len(forbidden)-1] {
		err := asRole(t, pool, "service_role", uuid.Nil, func(tx pgx.Tx) error {
			_, err := tx.Exec(bg, q)
			return err
		})
		require.NoError(t, err, "service_role: %s", q)
	}
	// no policy is USING (true)
	assert.Zero(t, pgtest.Int(t, pool, `select count(*) from pg_policies where schemaname = 'public' and qual = 'true'`))
	// the policies: members read their organisations' rows, nothing more
	assert.Equal(t, []string{
		"automation_analytics automation_analytics_member_read SELECT {authenticated}",
		"automation_deliveries automation_deliveries_member_read SELECT {authenticated}",
		"automation_execution_events automation_execution_events_member_read SELECT {authenticated}",
		"automation_execution_logs automation_execution_logs_member_read SELECT {authenticated}",
		"automation_opt_outs automation_opt_outs_member_read SELECT {authenticated}",
		"automation_schedule_state automation_schedule_state_member_read SELECT {authenticated}",
		"automation_sms_notices automation_sms_notices_member_read SELECT {authenticated}",
		"automation_suppressions automation_suppressions_member_read SELECT {authenticated}",
		"automation_workflows automation_workflows_member_read SELECT {authenticated}",
		"clients clients_member_read SELECT {authenticated}",
		"invoices invoices_member_read SELECT {authenticated}",
		"jobs jobs_member_read SELECT {authenticated}",
		"organization_members organization_members_self_read SELECT {authenticated}",
		"organizations organizations_member_read SELECT {authenticated}",
	}, pgtest.JSON[[]string](t, pool, `select jsonb_agg(concat_ws(' ', tablename, policyname, cmd, roles::text) order by tablename, policyname)
		from pg_policies where schemaname = 'public'`))
	assert.Equal(t, 13, pgtest.Int(t, pool, `select count(*) from pg_policies where schemaname = 'public'
		and qual = '(organization_id IN ( SELECT automation_current_org_ids() AS automation_current_org_ids))'`),
		"every policy but organizations' filters on the member's organisations")
}

func orgCol(tbl string) string {
	switch tbl {
	case "organizations", "automation_src_organizations":
		return "id = $1"
	}
	return "organization_id = $1"
}
