package engine

import (
	"math"
	"sync"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// Pacing of a claim without ids: an Engine learns how long its providers
// take, so that it claims no more than it can send before its cutoff. A
// slow provider (2 s a message) would otherwise cut every batch at the
// function's deadline and defer most of it, at every invocation.
const (
	// paceAlpha is the weight of a new observation in the moving averages.
	paceAlpha = 0.3
	// paceSafety is the share of the time left that the claim plans to use:
	// the rest covers the ledger and report calls and the scatter of the
	// providers' latency.
	paceSafety = 0.8
)

// pace holds, per channel, exponentially weighted moving averages of the
// seconds a send takes and of the sends an execution makes. Safe for
// concurrent use; a warm Lambda container keeps it between invocations.
type pace struct {
	mu      sync.Mutex
	latency map[automation.Channel]float64 // channel -> seconds per send
	perExec map[automation.Channel]float64 // channel -> sends per claimed execution
}

func newPace() *pace {
	return &pace{latency: map[automation.Channel]float64{}, perExec: map[automation.Channel]float64{}}
}

// ewma folds x into the average avg (x itself when there is none yet).
func ewma(avg float64, known bool, x float64) float64 {
	if !known {
		return x
	}
	return avg + paceAlpha*(x-avg)
}

// observeSend records the duration of one provider call on channel.
func (p *pace) observeSend(channel automation.Channel, d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	avg, known := p.latency[channel]
	p.latency[channel] = ewma(avg, known, d.Seconds())
}

// observeBatch records how many sends per channel the executions of a batch
// made that were worked to an end (not cut by the deadline: a cut execution
// made fewer sends than it needs). executions == 0 records nothing.
func (p *pace) observeBatch(sends map[automation.Channel]int, executions int) {
	if executions == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.latency {
		avg, known := p.perExec[ch]
		p.perExec[ch] = ewma(avg, known, float64(sends[ch])/float64(executions))
	}
}

// perExecution estimates the seconds of provider calls one execution needs:
// the sum over channels of latency times sends per execution (1 until a
// batch was seen). 0 while nothing was measured.
func (p *pace) perExecution() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	secs := 0.0
	for ch, lat := range p.latency {
		n, known := p.perExec[ch]
		if !known {
			n = 1
		}
		secs += lat * n
	}
	return secs
}

// claimLimit is how many executions a claim without ids takes when
// available is the time until the cutoff: min(batch, max(1,
// floor(available × paceSafety / per-execution seconds) × concurrency)).
// Sends run concurrency at a time, so each "round" of the estimate sends
// that many. Without an estimate (cold start, or sends measured as
// instantaneous) it is batch.
func (p *pace) claimLimit(available time.Duration, batch, concurrency int) int {
	per := p.perExecution()
	if per <= 0 {
		return batch
	}
	rounds := math.Floor(available.Seconds() * paceSafety / per)
	if rounds*float64(concurrency) >= float64(batch) {
		return batch
	}
	return max(1, int(rounds)*concurrency)
}
