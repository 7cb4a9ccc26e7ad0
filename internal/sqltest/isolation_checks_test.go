package sqltest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// previousHook is the reference automation_mark_invoices_overdue as
// installations before the check-isolation migration have it (it fails every
// organisation's marking on one unknown zone).
const previousHook = `create or replace function public.automation_mark_invoices_overdue(p_now timestamptz default now())
returns integer language plpgsql security definer set search_path = public, pg_temp set jit = off as $$
declare
  v_count integer;
begin
  -- marking is not app activity: keep updated_at (see automation_touch_updated_at)
  perform set_config('dueflow.keep_updated_at', 'on', true);
  update public.invoices i set status = 'overdue'
  where i.id in (
    select x.id
    from public.organizations o
    cross join lateral (
      select i2.id from public.invoices i2
      where i2.organization_id = o.id and i2.status = 'sent'
        and i2.due_date < (p_now at time zone o.timezone)::date
      offset 0 -- a per-organisation index range scan
    ) x);
  get diagnostics v_count = row_count;
  perform set_config('dueflow.keep_updated_at', 'off', true);
  return v_count;
end
$$`

// The check-isolation migration upgrades dueflow's previous reference
// overdue-marking hook to the zone-safe one, and keeps an adopter's own hook.
func TestMarkingHookUpgradedUnlessAdopted(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	org := pgtest.AllDayOrg(t, db)
	mars := pgtest.AllDayOrg(t, db)
	cl := pgtest.CreateClient(t, db, pgtest.Client{Org: org, Email: "c@client.test"})
	inv := pgtest.CreateInvoice(t, db, pgtest.Invoice{Org: org, Client: cl, DueInDays: -3})
	pgtest.Exec(t, db, `alter table organizations drop constraint organizations_timezone_check`)
	pgtest.Exec(t, db, `update organizations set timezone = 'Mars/Phobos' where id = $1`, mars)

	pgtest.Exec(t, db, previousHook)
	_, err := db.Exec(bg, `select automation_mark_invoices_overdue()`)
	require.Error(t, err, "the previous hook fails on an unknown zone")
	require.NoError(t, pgtest.Migrate(bg, db))
	assert.Equal(t, 1, pgtest.Int(t, db, `select automation_mark_invoices_overdue()`), "upgraded: marks the other organisation's invoice")
	assert.Equal(t, "overdue", pgtest.Text(t, db, `select status from invoices where id = $1`, inv))

	pgtest.Exec(t, db, `create or replace function public.automation_mark_invoices_overdue(p_now timestamptz default now())
		returns integer language sql stable set search_path = public, pg_temp as $$ select 0 $$`)
	require.NoError(t, pgtest.Migrate(bg, db))
	assert.Equal(t, " select 0 ", pgtest.Text(t, db, `select prosrc from pg_proc where oid = 'public.automation_mark_invoices_overdue(timestamptz)'::regprocedure`),
		"an adopter's hook is kept")
}

// What the checks record of an error names the objects but never the data:
// quoted values and e-mail-like words are masked.
func TestCheckErrorMessagesMasked(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	for in, want := range map[string]string{
		`invalid input syntax for type integer: "nine"`:                                                               `invalid input syntax for type integer: "…"`,
		`invalid input syntax for type integer: "say "hi" Bob"`:                                                       `invalid input syntax for type integer: "…"`,
		`time zone "Mars/Phobos" not recognized`:                                                                      `time zone "…" not recognized`,
		`null value in column "next_attempt_at" of relation "automation_execution_logs" violates not-null constraint`: `null value in column "next_attempt_at" of relation "automation_execution_logs" violates not-null constraint`,
		`duplicate key value violates unique constraint "x_key"`:                                                      `duplicate key value violates unique constraint "x_key"`,
		`value 'Ada Lovelace' is wrong for ada@example.test`:                                                          `value '…' is wrong for …@…`,
	} {
		assert.Equal(t, want, pgtest.Text(t, db, `select automation_mask_error($1)`, in))
	}
	assert.Equal(t, 500, pgtest.Int(t, db, `select length(automation_mask_error(repeat('x', 10000)))`))
}
