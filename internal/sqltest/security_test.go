package sqltest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
)

// repoRoot is the module root (two levels above this file).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// secretPatterns are literal credentials that must never be committed.
var secretPatterns = map[string]*regexp.Regexp{
	"JWT (service-role or anon key)": regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`),
	"Standard Webhooks secret":       regexp.MustCompile(`whsec_[A-Za-z0-9+/]{16,}`),
	"service-role key assigned":      regexp.MustCompile(`(?i)service_?role_?key['"]?\s*(:=|=|:|=>)\s*'[^']{8,}`),
	"bearer token":                   regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._-]{20,}`),
	"provider API key":               regexp.MustCompile(`\b(key-[0-9a-f]{32}|SK[0-9a-f]{32}|KEY[0-9A-F]{20,}[A-Za-z0-9_]*|sk_live_[A-Za-z0-9]{8,})\b`),
}

// Bug 7 (a service-role key committed in SQL): no migration, nor the local
// compatibility SQL, contains a JWT, a webhook secret, a service-role key or
// a provider key.
func TestNoSecretInSQL(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var files []string
	for _, glob := range []string{"sql/*.sql", "sql/reference/*.sql", "sql/adapters/*/*.sql", "supabase/migrations/*.sql", "internal/supacompat/*.sql"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for name, re := range secretPatterns {
			for _, hit := range re.FindAllString(string(b), -1) {
				t.Errorf("%s: %s committed: %q", strings.TrimPrefix(f, root+"/"), name, hit)
			}
		}
	}
}

// The scanner finds what it is meant to find (a test that can fail).
func TestSecretPatternsMatch(t *testing.T) {
	t.Parallel()
	samples := []string{
		`select net.http_post(url := 'x', headers := '{"Authorization": "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.abc"}')`,
		`insert into vault.secrets (name, secret) values ('dueflow_webhook_secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')`,
		`service_role_key := 'abcdefghijklmnop'`,
	}
	for _, s := range samples {
		hit := false
		for _, re := range secretPatterns {
			hit = hit || re.MatchString(s)
		}
		assert.True(t, hit, s)
	}
	// the validation regex of the migrations is not a secret
	for _, re := range secretPatterns {
		assert.False(t, re.MatchString(`v_secret !~ '^whsec_[A-Za-z0-9+/=]+$'`))
	}
}

// Bug 7 (a service-role key committed in SQL), in the database: after the
// migrations no function body, view, cron command or column default holds
// a JWT or a webhook secret; the signing secret is read from Vault.
func TestNoSecretInSchema(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	q := `select coalesce(jsonb_agg(what), '[]') from (
		select 'function ' || p.proname as what, p.prosrc as txt from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		  where n.nspname not in ('pg_catalog', 'information_schema')
		union all
		select 'view ' || c.relname, pg_get_viewdef(c.oid) from pg_class c join pg_namespace n on n.oid = c.relnamespace
		  where c.relkind in ('v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
		union all
		select 'default ' || c.relname || '.' || a.attname, pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d
		  join pg_class c on c.oid = d.adrelid join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
		union all
		select 'setting ' || coalesce(r.rolname, '') || ' ' || array_to_string(s.setconfig, ','), array_to_string(s.setconfig, ',')
		  from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
	) x where txt ~ 'eyJ[A-Za-z0-9_-]{8,}\.' or txt ~ 'whsec_[A-Za-z0-9+/]{16,}'`
	assert.Empty(t, pgtest.JSON[[]string](t, db, q))
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from vault.secrets`), "a migration stored a secret")
	assert.Zero(t, pgtest.Int(t, db, `select count(*) from information_schema.columns
		where table_schema = 'public' and table_name = 'automation_endpoints' and column_name ~ '(secret|key|token)$' and column_name <> 'secret_name'`),
		"endpoints hold a secret name, never the secret")
}

// Bug 7 (an RLS policy USING (true)): every table in public has row level
// security; no policy in any schema is true for anyone; anon holds no
// privilege on any table or view in public; no SECURITY DEFINER function is
// executable by anon, nor by authenticated except the membership helper;
// users cannot write the automation tables.
func TestRLSEverywhereNoTruePolicy(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDB(t)
	list := func(q string) []string {
		t.Helper()
		return pgtest.JSON[[]string](t, db, `select coalesce(jsonb_agg(x order by x), '[]') from (`+q+`) q(x)`)
	}
	tables := list(`select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p')`)
	require.Contains(t, tables, "automation_execution_logs")
	require.Contains(t, tables, "invoices")
	assert.Empty(t, list(`select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity`), "tables without RLS")

	assert.Empty(t, list(`select schemaname || '.' || tablename || ' ' || policyname from pg_policies
		where schemaname not in ('pg_catalog', 'information_schema')
		  and (regexp_replace(lower(coalesce(qual, '')), '[\s()]', '', 'g') in ('true', '1=1')
		    or regexp_replace(lower(coalesce(with_check, '')), '[\s()]', '', 'g') in ('true', '1=1'))`),
		"policies USING (true) / WITH CHECK (true)")
	assert.Empty(t, list(`select schemaname || '.' || tablename || ' ' || policyname from pg_policies
		where schemaname = 'public' and (roles && array['anon', 'public']::name[])`), "policies for anon or public")
	// grants as a second fence (the app's own tables may grant writes to
	// authenticated: RLS without a write policy refuses them)
	assert.Empty(t, list(`select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
		  and has_table_privilege('anon', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE')`), "anon privileges")
	assert.Empty(t, list(`select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname like 'automation%'
		  and has_table_privilege('authenticated', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE')`), "authenticated may write automation tables")
	assert.Empty(t, list(`select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where n.nspname = 'public' and p.prosecdef and has_function_privilege('anon', p.oid, 'EXECUTE')`),
		"SECURITY DEFINER functions anon may run")
	assert.Equal(t, []string{"automation_current_org_ids"}, list(`select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where n.nspname = 'public' and p.prosecdef and has_function_privilege('authenticated', p.oid, 'EXECUTE')`),
		"SECURITY DEFINER functions authenticated may run")
}
