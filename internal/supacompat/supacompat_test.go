package supacompat_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/supacompat"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// net.http_post queues the request and wakes the worker at commit, not before.
func TestHTTPPostNotifiesAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, dsn := pgtest.NewDB(t)
	listener, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer listener.Close(ctx)
	_, err = listener.Exec(ctx, "listen "+supacompat.NotifyChannel)
	require.NoError(t, err)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	var id int64
	require.NoError(t, tx.QueryRow(ctx, `select net.http_post('http://127.0.0.1:9/x', '{"a": 1}'::jsonb,
		headers := '{"Content-Type": "application/json", "X-T": "1"}'::jsonb, timeout_milliseconds := 1234)`).Scan(&id))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = listener.WaitForNotification(short)
	cancel()
	require.Error(t, err, "no notification before commit")
	require.NoError(t, tx.Commit(ctx))
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wait)
	require.NoError(t, err)
	assert.Equal(t, supacompat.NotifyChannel, n.Channel)

	var method, url, body string
	var timeout int
	var hdr map[string]string
	require.NoError(t, pool.QueryRow(ctx, `select method, url, convert_from(body, 'UTF8'), timeout_milliseconds, headers
		from net.http_request_queue where id = $1`, id).Scan(&method, &url, &body, &timeout, &hdr))
	assert.Equal(t, strconv.FormatInt(id, 10), n.Payload)
	assert.Equal(t, "POST", method)
	assert.Equal(t, "http://127.0.0.1:9/x", url)
	assert.Equal(t, `{"a": 1}`, body, "the body is the jsonb's text")
	assert.Equal(t, 1234, timeout)
	assert.Equal(t, "1", hdr["X-T"])

	require.NoError(t, pool.QueryRow(ctx, `select net.http_get('http://127.0.0.1:9/y', '{"q": "1"}'::jsonb)`).Scan(&id))
	require.NoError(t, pool.QueryRow(ctx, `select url from net.http_request_queue where id = $1`, id).Scan(&url))
	assert.Equal(t, "http://127.0.0.1:9/y?q=1", url)
}

// auth.uid()/role()/jwt() read request.jwt.claims like Supabase; Vault
// create/update; Apply is idempotent; service_role bypasses RLS.
func TestAuthVaultAndIdempotence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewDB(t)
	require.NoError(t, supacompat.Apply(ctx, pool))
	require.NoError(t, supacompat.Apply(ctx, pool))

	user := uuid.New()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `select set_config('request.jwt.claims', $1, true)`, `{"sub":"`+user.String()+`","role":"authenticated","email":"a@b.test"}`)
	require.NoError(t, err)
	var uid uuid.UUID
	var role, email string
	require.NoError(t, tx.QueryRow(ctx, `select auth.uid(), auth.role(), auth.jwt() ->> 'email'`).Scan(&uid, &role, &email))
	assert.Equal(t, user, uid)
	assert.Equal(t, "authenticated", role)
	assert.Equal(t, "a@b.test", email)
	require.NoError(t, tx.Rollback(ctx))

	var none *uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `select auth.uid()`).Scan(&none))
	assert.Nil(t, none)

	var id uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `select vault.create_secret('whsec_abc', 'compat_test_secret', 'test')`).Scan(&id))
	_, err = pool.Exec(ctx, `select vault.update_secret($1, 'whsec_def')`, id)
	require.NoError(t, err)
	var secret string
	require.NoError(t, pool.QueryRow(ctx, `select decrypted_secret from vault.decrypted_secrets where name = 'compat_test_secret'`).Scan(&secret))
	assert.Equal(t, "whsec_def", secret)

	var bypass bool
	require.NoError(t, pool.QueryRow(ctx, `select rolbypassrls from pg_roles where rolname = 'service_role'`).Scan(&bypass))
	assert.True(t, bypass)
	var hmac int
	require.NoError(t, pool.QueryRow(ctx, `select length(extensions.hmac('x', 'k', 'sha256'))`).Scan(&hmac))
	assert.Equal(t, 32, hmac)
}
