package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dueflow/dueflow/internal/localports"
)

// NetWorkerConfig configures the pg_net stand-in worker.
type NetWorkerConfig struct {
	DSN          string        // database holding the net schema
	Concurrency  int           // requests in flight at once (default 32)
	BatchSize    int           // rows taken from the queue per claim (default 200, like pg_net)
	PollInterval time.Duration // safety poll when no notification arrives (default 1s)
	ResponseTTL  time.Duration // net._http_response rows older than this are deleted (default 6h, like pg_net)
	Logger       *slog.Logger
	// OnResponse, when set, is called after each response row is written.
	OnResponse func(NetResponse)
}

// NetResponse is what the worker wrote to net._http_response for one request.
type NetResponse struct {
	ID         int64
	Method     string
	URL        string
	StatusCode int // 0 when no response (error or timeout)
	TimedOut   bool
	ErrorMsg   string
	Content    string
	Elapsed    time.Duration
}

// NetWorker stands in for pg_net's background worker: it takes rows from
// net.http_request_queue (deleting them, as pg_net does), sends them over
// HTTP with each row's timeout, and records the outcome in
// net._http_response. Like pg_net it never retries.
type NetWorker struct {
	cfg     NetWorkerConfig
	mu      sync.Mutex // guards conn (claims, counts, cleanup)
	conn    *pgx.Conn
	client  *http.Client
	wake    chan struct{}
	sem     chan struct{}
	results chan netResult
	busy    atomic.Int64 // claims in progress (from DELETE to last response written)
	sent    atomic.Int64
	failed  atomic.Int64
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	writeWG sync.WaitGroup
}

type netResult struct {
	res         NetResponse
	contentType string
	headers     []byte
	done        func()
}

func (cfg NetWorkerConfig) connect(ctx context.Context) (*pgx.Conn, error) {
	ccfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	ccfg.RuntimeParams["application_name"] = "dueflow pg_net worker"
	ccfg.DialFunc = localports.DialContext
	c, err := pgx.ConnectConfig(ctx, ccfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// StartNetWorker connects to the database and starts listening on the
// dueflow_net channel and draining the queue.
func StartNetWorker(ctx context.Context, cfg NetWorkerConfig) (*NetWorker, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ResponseTTL <= 0 {
		cfg.ResponseTTL = 6 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	conns := make([]*pgx.Conn, 0, 3)
	closeAll := func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}
	for i := 0; i < 3; i++ {
		c, err := cfg.connect(ctx)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pg_net worker: %w", err)
		}
		conns = append(conns, c)
	}
	if _, err := conns[0].Exec(ctx, "listen dueflow_net"); err != nil {
		closeAll()
		return nil, fmt.Errorf("pg_net worker: listen dueflow_net: %w", err)
	}
	w := &NetWorker{
		cfg:  cfg,
		conn: conns[1],
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&localports.Dialer{Dialer: net.Dialer{Timeout: 5 * time.Second}}).DialContext,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     30 * time.Second,
		}},
		wake:    make(chan struct{}, 1),
		sem:     make(chan struct{}, cfg.Concurrency),
		results: make(chan netResult, cfg.Concurrency),
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(2)
	go w.listen(runCtx, conns[0])
	go w.run(runCtx)
	w.writeWG.Add(1)
	go w.write(conns[2])
	w.Wake()
	return w, nil
}

// Wake makes the worker look at the queue now.
func (w *NetWorker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats returns the number of requests answered (any HTTP status) and failed
// (no HTTP response) since start.
func (w *NetWorker) Stats() (answered, failed int64) { return w.sent.Load(), w.failed.Load() }

func (w *NetWorker) listen(ctx context.Context, c *pgx.Conn) {
	defer w.wg.Done()
	defer c.Close(context.Background())
	for {
		_, err := c.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.cfg.Logger.Warn("pg_net worker: listen failed; relying on polling", "error", err.Error())
			return
		}
		w.Wake()
	}
}

// withConn runs f on the worker's connection, reconnecting once if it broke.
func (w *NetWorker) withConn(ctx context.Context, f func(*pgx.Conn) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil || w.conn.IsClosed() {
		c, err := w.cfg.connect(ctx)
		if err != nil {
			return err
		}
		w.conn = c
	}
	return f(w.conn)
}

func (w *NetWorker) run(ctx context.Context) {
	defer w.wg.Done()
	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	lastTTL := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-poll.C:
		}
		for ctx.Err() == nil {
			n, err := w.claimAndSend(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.cfg.Logger.Warn("pg_net worker: claim failed", "error", err.Error())
				}
				break
			}
			if n < w.cfg.BatchSize {
				break
			}
		}
		if time.Since(lastTTL) > time.Minute {
			lastTTL = time.Now()
			err := w.withConn(ctx, func(c *pgx.Conn) error {
				_, err := c.Exec(ctx, "delete from net._http_response where created < now() - make_interval(secs => $1)", w.cfg.ResponseTTL.Seconds())
				return err
			})
			if err != nil && ctx.Err() == nil {
				w.cfg.Logger.Warn("pg_net worker: response ttl cleanup failed", "error", err.Error())
			}
		}
	}
}

type netRequest struct {
	id        int64
	method    string
	url       string
	headers   map[string]string
	body      []byte
	timeoutMS int
}

// claimAndSend takes up to BatchSize rows and starts sending them; it
// returns once every request has been handed to a sender (sending goes on
// in the background, bounded by Concurrency).
//
// Long: the local pg_net stand-in's claim-and-send loop, kept in one piece beside the SQL it mirrors
func (w *NetWorker) claimAndSend(ctx context.Context) (int, error) {
	w.busy.Add(1)
	var reqs []netRequest
	err := w.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `
			delete from net.http_request_queue
			where id in (select id from net.http_request_queue order by id limit $1 for update skip locked)
			returning id, method, url, headers, body, timeout_milliseconds`, w.cfg.BatchSize)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r netRequest
			var headers []byte
			if err := rows.Scan(&r.id, &r.method, &r.url, &headers, &r.body, &r.timeoutMS); err != nil {
				return err
			}
			r.headers = map[string]string{}
			if len(headers) > 0 {
				var raw map[string]any
				if err := json.Unmarshal(headers, &raw); err == nil {
					for k, v := range raw {
						if s, ok := v.(string); ok {
							r.headers[k] = s
						} else {
							b, _ := json.Marshal(v)
							r.headers[k] = string(b)
						}
					}
				}
			}
			reqs = append(reqs, r)
		}
		return rows.Err()
	})
	if err != nil {
		w.busy.Add(-1)
		return 0, fmt.Errorf("take queued requests: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(len(reqs))
	for i, r := range reqs {
		select {
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			for range reqs[i:] {
				wg.Done()
			}
			wg.Wait()
			w.busy.Add(-1)
			return len(reqs), ctx.Err()
		}
		go func(r netRequest) {
			defer func() { <-w.sem }()
			w.send(ctx, r, wg.Done)
		}(r)
	}
	go func() {
		wg.Wait()
		w.busy.Add(-1)
	}()
	return len(reqs), nil
}

func (w *NetWorker) send(ctx context.Context, r netRequest, done func()) {
	start := time.Now()
	res := NetResponse{ID: r.id, Method: r.method, URL: r.url}
	timeout := time.Duration(r.timeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := netResult{done: done}
	req, err := http.NewRequestWithContext(rctx, r.method, r.url, bytes.NewReader(r.body))
	if err == nil {
		for k, v := range r.headers {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		resp, err = w.client.Do(req)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				res.StatusCode = resp.StatusCode
				res.Content = string(body)
				out.contentType = resp.Header.Get("Content-Type")
				headers := make(map[string]string, len(resp.Header))
				for k, vs := range resp.Header {
					if len(vs) > 0 {
						headers[k] = vs[0]
					}
				}
				out.headers, _ = json.Marshal(headers)
			}
		}
	}
	if err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			res.TimedOut = true
			res.ErrorMsg = fmt.Sprintf("Timeout of %d ms reached", r.timeoutMS)
		} else {
			res.ErrorMsg = err.Error()
		}
	}
	res.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		done() // stopping: like a pg_net worker shut down mid-request, nothing is recorded
		return
	}
	out.res = res
	w.results <- out
}

// write records responses in batches, one multi-row insert per batch.
func (w *NetWorker) write(c *pgx.Conn) {
	defer w.writeWG.Done()
	defer func() { c.Close(context.Background()) }()
	for first := range w.results {
		batch := []netResult{first}
	more:
		for len(batch) < 500 {
			select {
			case r, ok := <-w.results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		c = w.insert(c, batch)
	}
}

func (w *NetWorker) insert(c *pgx.Conn, batch []netResult) *pgx.Conn {
	n := len(batch)
	ids := make([]int64, n)
	status := make([]*int32, n)
	ctype := make([]*string, n)
	headers := make([]*string, n)
	content := make([]*string, n)
	timedOut := make([]bool, n)
	errMsg := make([]*string, n)
	for i, b := range batch {
		r := b.res
		ids[i] = r.ID
		timedOut[i] = r.TimedOut
		if r.StatusCode != 0 {
			s := int32(r.StatusCode)
			status[i] = &s
			content[i] = &batch[i].res.Content
			h := string(b.headers)
			headers[i] = &h
			w.sent.Add(1)
		} else {
			w.failed.Add(1)
		}
		if b.contentType != "" {
			ctype[i] = &batch[i].contentType
		}
		if r.ErrorMsg != "" {
			errMsg[i] = &batch[i].res.ErrorMsg
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.IsClosed() {
		if nc, err := w.cfg.connect(ctx); err == nil {
			c = nc
		}
	}
	_, err := c.Exec(ctx, `
		insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
		select * from unnest($1::bigint[], $2::int[], $3::text[], $4::text[]::jsonb[], $5::text[], $6::bool[], $7::text[])`,
		ids, status, ctype, headers, content, timedOut, errMsg)
	if err != nil {
		w.cfg.Logger.Warn("pg_net worker: record responses failed", "requests", n, "error", err.Error())
	}
	for _, b := range batch {
		w.cfg.Logger.Debug("pg_net request", "request_id", b.res.ID, "url", b.res.URL, "status", b.res.StatusCode,
			"timed_out", b.res.TimedOut, "elapsed_ms", b.res.Elapsed.Milliseconds())
		if w.cfg.OnResponse != nil {
			w.cfg.OnResponse(b.res)
		}
		b.done()
	}
	return c
}

// drainOutage is how long Drain keeps trying while the database cannot be
// read (a restart in a fault test) before it gives up.
const drainOutage = 30 * time.Second

// Drain waits until the queue is empty and every request taken from it has
// its response recorded. A database that cannot be read for a while (it is
// restarting) is waited for, up to drainOutage.
func (w *NetWorker) Drain(ctx context.Context) error {
	var failingSince time.Time
	for {
		w.Wake()
		empty := true
		for i := 0; i < 2 && empty; i++ { // twice: a claim may start between the reads
			var queued int64
			err := w.withConn(ctx, func(c *pgx.Conn) error {
				return c.QueryRow(ctx, "select count(*) from net.http_request_queue").Scan(&queued)
			})
			if err != nil {
				if failingSince.IsZero() {
					failingSince = time.Now()
				}
				if ctx.Err() != nil || time.Since(failingSince) > drainOutage {
					return fmt.Errorf("pg_net drain: count queue: %w", err)
				}
				empty = false
				break
			}
			failingSince = time.Time{}
			empty = queued == 0 && w.busy.Load() == 0
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_net drain: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the worker; requests in flight are abandoned (as when pg_net's
// worker stops).
func (w *NetWorker) Close() {
	w.cancel()
	w.wg.Wait()
	// senders return promptly once the context is cancelled
	for i := 0; i < cap(w.sem); i++ {
		w.sem <- struct{}{}
	}
	close(w.results)
	w.writeWG.Wait()
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
	w.mu.Unlock()
	w.client.CloseIdleConnections()
}
