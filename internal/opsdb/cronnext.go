package opsdb

import (
	"strconv"
	"strings"
	"time"
)

// NextRun is the first time after now a pg_cron schedule fires: five cron
// fields (minute hour day-of-month month day-of-week; *, lists, ranges,
// steps; pg_cron runs them in UTC) or pg_cron's "N seconds". ok is false for
// a schedule it does not understand ("@daily", "$" for the last day, ...).
func NextRun(schedule string, now time.Time) (time.Time, bool) {
	now = now.UTC()
	f := strings.Fields(schedule)
	if len(f) == 2 && (f[1] == "seconds" || f[1] == "second") {
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 || n > 59 {
			return time.Time{}, false
		}
		return now.Truncate(time.Second).Add(time.Duration(n) * time.Second), true
	}
	if len(f) != 5 {
		return time.Time{}, false
	}
	limits := [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	var sets [5]map[int]bool
	for i, field := range f {
		s, ok := cronField(field, limits[i][0], limits[i][1])
		if !ok {
			return time.Time{}, false
		}
		sets[i] = s
	}
	if sets[4][7] {
		sets[4][0] = true
	}
	domAny, dowAny := f[2] == "*", f[4] == "*"
	t := now.Truncate(time.Minute).Add(time.Minute)
	for end := t.AddDate(5, 0, 0); t.Before(end); t = t.Add(time.Minute) {
		if !sets[3][int(t.Month())] {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
			continue
		}
		dom, dow := sets[2][t.Day()], sets[4][int(t.Weekday())]
		var day bool
		switch {
		case domAny && dowAny:
			day = true
		case domAny:
			day = dow
		case dowAny:
			day = dom
		default: // cron: either matches
			day = dom || dow
		}
		if !day {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
			continue
		}
		if sets[1][t.Hour()] && sets[0][t.Minute()] {
			return t, true
		}
	}
	return time.Time{}, false
}

// cronField expands one cron field into the values it matches.
func cronField(field string, lo, hi int) (map[int]bool, bool) {
	out := map[int]bool{}
	for _, part := range strings.Split(field, ",") {
		step := 1
		if i := strings.IndexByte(part, '/'); i >= 0 {
			n, err := strconv.Atoi(part[i+1:])
			if err != nil || n < 1 {
				return nil, false
			}
			step, part = n, part[:i]
		}
		from, to := lo, hi
		switch {
		case part == "*":
		case strings.Contains(part, "-"):
			a, b, _ := strings.Cut(part, "-")
			x, err1 := strconv.Atoi(a)
			y, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, false
			}
			from, to = x, y
		default:
			x, err := strconv.Atoi(part)
			if err != nil {
				return nil, false
			}
			from, to = x, x
			if step > 1 {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return nil, false
		}
		for v := from; v <= to; v += step {
			out[v] = true
		}
	}
	return out, true
}
