package riverbench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/pgtest"
	"github.com/dueflow/dueflow/internal/stacktest"
	"github.com/dueflow/dueflow/shared/config"
	"github.com/dueflow/dueflow/shared/notify/senders"
)

var (
	root  string
	built map[string]string // function name -> bootstrap, built once per test binary
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if root, err = devstack.FindRoot("../.."); err != nil {
			fmt.Fprintln(os.Stderr, "bench/river:", err)
			return 1
		}
		var cleanup func()
		if built, cleanup, err = stacktest.BuildAll(root, "dueflow-benchriver-fn-"); err != nil {
			fmt.Fprintln(os.Stderr, "bench/river:", err)
			return 1
		}
		defer cleanup()
		return m.Run()
	}()
	os.Exit(code)
}

// sideDefaults are the defaults of the knobs (stacktest.KnobsFromEnv; the
// Makefile's N, ROUNDS, LATENCY, INSTANCES, CONCURRENCY, BATCH, CASE).
var sideDefaults = stacktest.Knobs{
	N:           10000,
	Latencies:   []time.Duration{0},
	Instances:   4,
	Concurrency: 16,
	Batch:       100,
	Rounds:      3,
}

// riverKnobs are River's settings: RIVER_WORKERS (MaxWorkers of the one
// queue; also the SMTP sessions of its sender), RIVER_COOLDOWN
// (FetchCooldown), RIVER_POLL (FetchPollInterval). The defaults are the
// fastest found on the 2-core machine (docs/benchmarks.md, "River side by side"): with
// the local inbox the drain is CPU-bound and more workers only add
// contention; with a provider latency the workers are what waits.
type riverKnobs struct {
	Workers  int // 0: autoWorkers
	Cooldown time.Duration
	Poll     time.Duration
}

// Workers when RIVER_WORKERS is not set: for the local inbox, and for a
// provider latency.
const (
	autoWorkersLocal   = 50
	autoWorkersLatency = 200
)

func riverKnobsFromEnv() (riverKnobs, error) {
	k := riverKnobs{Cooldown: time.Millisecond, Poll: 50 * time.Millisecond}
	if err := stacktest.EnvInt("RIVER_WORKERS", &k.Workers, 1, 1000); err != nil {
		return k, err
	}
	if err := stacktest.EnvDuration("RIVER_COOLDOWN", &k.Cooldown, river.FetchCooldownMin, time.Minute); err != nil {
		return k, err
	}
	if err := stacktest.EnvDuration("RIVER_POLL", &k.Poll, river.FetchPollIntervalMin, time.Minute); err != nil {
		return k, err
	}
	k.Poll = max(k.Poll, k.Cooldown) // River refuses a poll interval under the cooldown
	return k, nil
}

// workers is the River worker count at a provider latency.
func (k riverKnobs) workers(latency time.Duration) int {
	switch {
	case k.Workers > 0:
		return k.Workers
	case latency > 0:
		return autoWorkersLatency
	default:
		return autoWorkersLocal
	}
}

func (k riverKnobs) String() string {
	w := strconv.Itoa(k.Workers)
	if k.Workers == 0 {
		w = fmt.Sprintf("auto (%d, %d with a provider latency)", autoWorkersLocal, autoWorkersLatency)
	}
	return fmt.Sprintf("RIVER_WORKERS=%s RIVER_COOLDOWN=%s RIVER_POLL=%s", w, k.Cooldown, k.Poll)
}

// riverSchema is the schema River's tables live in, in the stack's dueflow
// database (the worker reads the executions' data there).
const riverSchema = "river"

// BenchmarkRiverVsDueflow drains the same N due invoice reminders, rounds
// alternated (River, dueflow, River, dueflow, ...) after one warm-up drain
// of each that is not counted: River jobs inserted
// with InsertManyFast (not timed), then a River client started and timed
// until every job is completed; then dueflow's whole local stack, timed
// from the cycle until every execution is completed
// (stacktest.DrainPipeline). Both send through dueflow's SMTP sender to the
// stack's SMTP capture, on the stack's Postgres cluster. It prints both
// rates and their ratio per round and overall.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 120m   (in bench/river)
func BenchmarkRiverVsDueflow(b *testing.B) {
	k, err := stacktest.KnobsFromEnv(sideDefaults, "river", "dueflow")
	require.NoError(b, err)
	rk, err := riverKnobsFromEnv()
	require.NoError(b, err)
	s := stacktest.Start(b, devstack.Config{
		Root:           root,
		NoCron:         true,
		FastPostgres:   true,
		BuiltFunctions: built,
		Instances:      k.Instances,
		NetConcurrency: max(16, k.Instances),
		FunctionEnv:    []string{"SMS_PROVIDER=none", fmt.Sprintf("DUEFLOW_CONCURRENCY=%d", k.Concurrency), "LOG_LEVEL=warn"},
	})
	stacktest.SeedDue(b, s, k.N, k.Batch)
	rb := newRiverBench(b, s, k.N, rk)

	var report strings.Builder
	fmt.Fprintf(&report, "\n%s %s\n", k, rk)
	fmt.Fprintf(&report, "sends in flight at most: River its workers, dueflow %d (INSTANCES x CONCURRENCY)\n", k.Instances*k.Concurrency)
	var riverAll, dueflowAll []stacktest.Result
	for i := 0; i < b.N; i++ {
		for _, lat := range k.Latencies {
			s.SMTPCapture().SetDelay(lat)
			fmt.Fprintf(&report, "-- provider latency %s per message:\n%-6s %s\n", lat, "round", stacktest.Header)
			// One warm-up drain of each side, not counted: the first drain
			// pays for River's connections and its client's first start, and
			// for the functions' cold starts and SMTP sessions.
			if k.Runs("river") {
				fmt.Fprintf(&report, "%-6s %s\n", "warm", rb.drain(b, lat))
			}
			if k.Runs("dueflow") {
				fmt.Fprintf(&report, "%-6s %s\n", "warm", stacktest.DrainPipeline(b, s, k.N, nil))
			}
			var riv, due []stacktest.Result
			for r := 1; r <= k.Rounds; r++ {
				if k.Runs("river") {
					res := rb.drain(b, lat)
					riv = append(riv, res)
					fmt.Fprintf(&report, "%-6d %s\n", r, res)
				}
				if k.Runs("dueflow") {
					res := stacktest.DrainPipeline(b, s, k.N, nil)
					due = append(due, res)
					fmt.Fprintf(&report, "%-6d %s\n%s", r, res, res.Profile)
				}
				if len(riv) == r && len(due) == r {
					fmt.Fprintf(&report, "%-6d dueflow / River = %.2fx\n", r, due[r-1].PerSecond/riv[r-1].PerSecond)
				}
				fmt.Print(report.String()) // as it goes: a run of many rounds is long
				report.Reset()
			}
			rr, dr := overall(riv), overall(due)
			if len(riv) > 0 {
				fmt.Fprintf(&report, "overall River:   %d in %s = %.0f exec/s\n", rr.N, rr.Elapsed.Round(time.Millisecond), rr.PerSecond)
			}
			if len(due) > 0 {
				fmt.Fprintf(&report, "overall dueflow: %d in %s = %.0f exec/s\n", dr.N, dr.Elapsed.Round(time.Millisecond), dr.PerSecond)
			}
			if len(riv) > 0 && len(due) > 0 {
				fmt.Fprintf(&report, "overall dueflow / River = %.2fx (provider latency %s)\n", dr.PerSecond/rr.PerSecond, lat)
			}
			riverAll, dueflowAll = append(riverAll, riv...), append(dueflowAll, due...)
		}
		s.SMTPCapture().SetDelay(0)
	}
	fmt.Print(report.String())
	rr, dr := overall(riverAll), overall(dueflowAll)
	if rr.N > 0 {
		b.ReportMetric(rr.PerSecond, "river-exec/s")
	}
	if dr.N > 0 {
		b.ReportMetric(dr.PerSecond, "dueflow-exec/s")
	}
	if rr.N > 0 && dr.N > 0 {
		b.ReportMetric(dr.PerSecond/rr.PerSecond, "x-river")
	}
}

// overall adds rounds up: every execution over the time of every round.
func overall(rs []stacktest.Result) stacktest.Result {
	var o stacktest.Result
	for _, r := range rs {
		o.N += r.N
		o.Elapsed += r.Elapsed
	}
	if o.Elapsed > 0 {
		o.PerSecond = float64(o.N) / o.Elapsed.Seconds()
	}
	return o
}

// riverBench is River set up on the stack: its schema migrated into the
// dueflow database, its own connection pool, the worker with dueflow's
// SMTP sender configured as the functions are (their environment).
type riverBench struct {
	s      *devstack.Stack
	n      int
	knobs  riverKnobs
	pool   *pgxpool.Pool
	worker *ReminderWorker
}

func newRiverBench(b *testing.B, s *devstack.Stack, n int, k riverKnobs) *riverBench {
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(s.DSN())
	require.NoError(b, err)
	// a connection per worker (each runs one SELECT) plus River's own
	// (fetch, completer, notifier, leader), within max_connections 200
	maxWorkers := max(k.workers(0), k.workers(time.Second))
	pcfg.MaxConns = int32(min(maxWorkers+8, 150))
	pcfg.ConnConfig.RuntimeParams["application_name"] = "river bench"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	pgtest.Exec(b, pool, `create schema if not exists `+riverSchema)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: riverSchema})
	require.NoError(b, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(b, err)

	env := append(s.FunctionEnvironment(), fmt.Sprintf("SMTP_MAX_CONNECTIONS=%d", min(maxWorkers, 256)), config.EnvAction+"=invoice-reminder")
	cfg, err := config.Load(func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], name+"="); ok {
				return v
			}
		}
		return ""
	})
	require.NoError(b, err)
	sender, _, err := senders.FromConfig(cfg)
	require.NoError(b, err)
	return &riverBench{s: s, n: n, knobs: k, pool: pool,
		worker: &ReminderWorker{DB: pool, Sender: sender, EmailFrom: cfg.EmailFrom, EmailFromName: cfg.EmailFromName}}
}

// drain makes the same n executions due as dueflow's drain does (their
// bench_due rows), inserts one River job per execution (InsertManyFast, not
// timed), then starts a River client and times it until every job is
// completed. It fails the test unless every job completed at its first
// attempt with exactly one email received.
func (rb *riverBench) drain(b *testing.B, latency time.Duration) stacktest.Result {
	ctx := context.Background()
	nWorkers := rb.knobs.workers(latency)
	stacktest.ResetDue(b, rb.s, rb.n)
	pgtest.Exec(b, rb.pool, `truncate `+riverSchema+`.river_job`)
	workers := river.NewWorkers()
	river.AddWorker(workers, rb.worker)
	client, err := river.NewClient(riverpgxv5.New(rb.pool), &river.Config{
		Schema:            riverSchema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: nWorkers}},
		Workers:           workers,
		FetchCooldown:     rb.knobs.Cooldown,
		FetchPollInterval: rb.knobs.Poll,
		MaxAttempts:       5,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(b, err)

	rows, err := rb.pool.Query(ctx, `select id from bench_due order by id`)
	require.NoError(b, err)
	var params []river.InsertManyParams
	for rows.Next() {
		var a ReminderArgs
		require.NoError(b, rows.Scan(&a.ExecutionID))
		params = append(params, river.InsertManyParams{Args: a})
	}
	require.NoError(b, rows.Err())
	require.Len(b, params, rb.n)
	t0 := time.Now()
	inserted, err := client.InsertManyFast(ctx, params)
	require.NoError(b, err)
	require.Equal(b, rb.n, inserted)
	insertTime := time.Since(t0)
	pgtest.Exec(b, rb.pool, `vacuum analyze `+riverSchema+`.river_job`) // as dueflow's reset does for its executions

	cpu0 := stacktest.CPUNow(rb.s)
	start := time.Now()
	require.NoError(b, client.Start(ctx))
	deadline := start.Add(5*time.Minute + time.Duration(rb.n)*10*time.Millisecond)
	for {
		var done, bad int
		require.NoError(b, rb.pool.QueryRow(ctx, `select count(*) filter (where state = 'completed'),
			count(*) filter (where state in ('retryable', 'discarded', 'cancelled') or attempt > 1)
			from `+riverSchema+`.river_job`).Scan(&done, &bad))
		if bad > 0 {
			b.Fatalf("river: %d jobs failed or retried", bad)
		}
		if done == rb.n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("river: %d of %d jobs completed after %s", done, rb.n, time.Since(start).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := stacktest.CPUSince(rb.s, cpu0)
	pgCPU := stacktest.CPUByRole(rb.s, cpu0)["postgres"]
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(b, client.Stop(stopCtx))
	require.Equal(b, rb.n, rb.s.SMTPCapture().Count(), "emails received")
	var p50, p95 float64
	require.NoError(b, rb.pool.QueryRow(ctx, `select percentile_cont(0.5) within group (order by x), percentile_cont(0.95) within group (order by x)
		from (select extract(epoch from j.finalized_at - d.due_at) as x from `+riverSchema+`.river_job j
		      join bench_due d on d.id = (j.args ->> 'execution_id')::uuid) t`).Scan(&p50, &p95))
	b.Logf("river: inserted %d jobs in %s (not timed)", rb.n, insertTime.Round(time.Millisecond))
	return stacktest.Result{Name: fmt.Sprintf("River (%d workers)", nWorkers), N: rb.n, Elapsed: elapsed,
		PerSecond: float64(rb.n) / elapsed.Seconds(), P50: time.Duration(p50 * float64(time.Second)),
		P95: time.Duration(p95 * float64(time.Second)), CPU: cpu, PostgresCPU: pgCPU}
}
