// Package supacompat holds the local-only Supabase compatibility SQL: the API
// roles (anon, authenticated, service_role), auth.uid()/role()/jwt(), a Vault
// stand-in (vault.secrets, vault.decrypted_secrets, vault.create_secret), the
// extensions schema with pgcrypto, and the pg_net SQL API (net.http_post,
// net.http_request_queue, net._http_response, woken by pg_notify at commit).
// It exists for tests and the local stack only; Supabase provides all of it.
package supacompat

import (
	"context"
	_ "embed"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

// SQL is the compatibility script. It is idempotent.
//
//go:embed compat.sql
var SQL string

// NotifyChannel is the channel net.http_request_queue inserts notify (payload: the request id).
const NotifyChannel = "dueflow_net"

// Apply runs the compatibility script in one transaction.
func Apply(ctx context.Context, db pgcluster.Beginner) error {
	return pgcluster.ApplySQL(ctx, db, "supacompat", SQL)
}
