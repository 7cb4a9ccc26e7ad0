package engine

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/smtpstall"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// With the real SMTP sender and a relay that stops answering, the batch is
// still reported before the request's deadline. A stall before the content
// was sent (MAIL FROM) hands nothing over: the deliveries fail retryable and
// go out on the next attempt. A stall awaiting the reply to the end of DATA
// may have delivered: recorded unknown and never sent again.
func TestStallingRelayReportedBeforeDeadline(t *testing.T) {
	for _, tc := range []struct {
		stage   smtpstall.Stage
		unknown bool
	}{{smtpstall.MAIL, false}, {smtpstall.EndOfData, true}} {
		t.Run(string(tc.stage), func(t *testing.T) {
			srv := smtpstall.Start(t, smtpstall.Config{})
			srv.StallAt(tc.stage)
			sender, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: srv.Port(), TLS: smtpmail.TLSNone,
				Timeout: 30 * time.Second, MaxConnections: 4})
			require.NoError(t, err)
			t.Cleanup(func() { srv.Close(); _ = sender.Close() })

			f := newFixture(t, automation.ActionInvoiceReminder)
			f.eng.o.Now, f.store.Now = time.Now, time.Now
			f.eng.o.Margin = 400 * time.Millisecond
			f.eng.o.Email = sender
			st := &timedReport{Store: f.store}
			f.eng.o.Store = st
			ids := []uuid.UUID{f.store.Add(invoiceDoc(email)), f.store.Add(invoiceDoc(email)), f.store.Add(invoiceDoc(email))}

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			deadline, _ := ctx.Deadline()
			_, err = f.eng.Process(ctx, automation.Request{Action: automation.ActionInvoiceReminder, ExecutionIDs: ids})
			require.NoError(t, err)
			require.False(t, st.at.IsZero(), "reported")
			assert.True(t, st.at.Before(deadline), "reported %v after the deadline", st.at.Sub(deadline))
			assert.Equal(t, len(ids), srv.Stalled(), "every send reached the relay and stalled")
			assert.Empty(t, srv.Delivered())
			for _, id := range ids {
				o := f.lastOutcome(t, id)
				require.Len(t, o.Deliveries, 1)
				d := o.Deliveries[0]
				assert.Equal(t, notify.CodeTimeout, d.ErrorCode)
				assert.NotContains(t, d.ErrorMessage, "ada@example.org")
				if tc.unknown {
					assert.Equal(t, automation.DeliveryUnknown, d.Status, "the content was sent: maybe delivered")
				} else {
					assert.Equal(t, automation.DeliveryFailed, d.Status, "nothing was handed over: not unknown")
					assert.True(t, d.Retryable)
				}
			}

			// The next attempt, with the relay answering again.
			srv.StallAt(smtpstall.None)
			f.process(t, ids...)
			if tc.unknown {
				assert.Empty(t, srv.Delivered(), "an unknown delivery is never sent again")
				return
			}
			assert.Len(t, srv.Delivered(), len(ids), "retried and sent")
			for _, id := range ids {
				assert.Equal(t, automation.OutcomeCompleted, f.lastOutcome(t, id).Status)
			}
		})
	}
}
