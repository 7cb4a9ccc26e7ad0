package smtpmail_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// BenchmarkSend sends to the in-process go-smtp server with eight senders at
// once: "pooled" reuses sessions, "session-per-message" (at most one message
// per connection) dials, greets and quits for every message as the sender
// did before the pool.
//
//	go test -run '^$' -bench Send -benchtime 2000x ./shared/notify/smtpmail
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		perConn int
	}{{"pooled", 0}, {"session-per-message", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			host, port := startServer(b, &backend{}, nil, false)
			s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second,
				MaxConnections: 8, MaxMessagesPerConnection: bc.perConn})
			require.NoError(b, err)
			m := message()
			b.SetParallelism(4) // 4 x GOMAXPROCS goroutines, bounded to 8 sessions
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Send(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			require.NoError(b, s.Close())
		})
	}
}
