package secrets

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Cache holds the last good read of a Source and re-reads it when older
// than its max age. A failed re-read keeps the last good values (and is not
// tried again for RetryAfterFailure); only the first read must succeed.
// Safe for concurrent use.
type Cache struct {
	src    Source
	maxAge time.Duration // 0: never re-read
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	values  map[string]string
	version uint64    // counts changes of values, from 1
	due     time.Time // next re-read
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) CacheOption { return func(c *Cache) { c.now = now } }

// WithLogger sets the logger of re-read failures (default slog.Default()).
func WithLogger(log *slog.Logger) CacheOption { return func(c *Cache) { c.log = log } }

// NewCache reads src once, within ctx and ColdStartTimeout; maxAge 0 never
// re-reads. The error is the source's (it names the source, never a value).
func NewCache(ctx context.Context, src Source, maxAge time.Duration, opts ...CacheOption) (*Cache, error) {
	c := &Cache{src: src, maxAge: maxAge, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(c)
	}
	rctx, cancel := context.WithTimeout(ctx, ColdStartTimeout)
	defer cancel()
	v, err := src.Read(rctx)
	if err != nil {
		return nil, err
	}
	c.values, c.version, c.due = v, 1, c.now().Add(maxAge)
	return c, nil
}

// Source is the cache's source.
func (c *Cache) Source() Source { return c.src }

// MaxAge is the longest a read is used (0: never re-read).
func (c *Cache) MaxAge() time.Duration { return c.maxAge }

// Values returns a copy of the current values and their version (it
// changes exactly when the values do).
func (c *Cache) Values() (map[string]string, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.values), c.version
}

// Refresh re-reads the source when the values are older than the max age,
// within ctx and RefreshTimeout, and returns the current version. A failure
// is logged as a warning (source name and error, no value) and the last
// good values stay. Concurrent callers wait for one re-read.
func (c *Cache) Refresh(ctx context.Context) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxAge <= 0 || c.now().Before(c.due) {
		return c.version
	}
	rctx, cancel := context.WithTimeout(ctx, RefreshTimeout)
	defer cancel()
	start := c.now()
	v, err := c.src.Read(rctx)
	if err != nil {
		c.due = c.now().Add(min(RetryAfterFailure, c.maxAge))
		c.log.WarnContext(ctx, "secrets re-read failed; keeping the last good values",
			"secret", c.src.Name(), "error", err.Error(), "duration_ms", c.now().Sub(start).Milliseconds(),
			"retry_in_s", int(min(RetryAfterFailure, c.maxAge).Seconds()))
		return c.version
	}
	c.due = c.now().Add(c.maxAge)
	if changed := changedKeys(c.values, v); len(changed) > 0 {
		c.values = v
		c.version++
		c.log.InfoContext(ctx, "secrets changed", "secret", c.src.Name(), "keys", changed, "version", c.version)
	}
	return c.version
}

// changedKeys names the keys added, removed or changed from a to b, sorted.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return sorted(out)
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
