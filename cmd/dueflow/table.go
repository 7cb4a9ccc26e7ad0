package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
)

// table is a query result as text, the way psql shows it.
type table struct {
	Columns []string
	Rows    [][]string
}

// queryTable runs sql with the simple protocol, so every value comes back in
// Postgres's own text form whatever its type (numeric, interval, uuid, ...).
func queryTable(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (table, error) {
	rows, err := conn.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		return table{}, err
	}
	defer rows.Close()
	var t table
	for _, fd := range rows.FieldDescriptions() {
		t.Columns = append(t.Columns, fd.Name)
	}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]string, len(raw))
		for i, v := range raw {
			if v == nil {
				row[i] = "-"
			} else {
				row[i] = cleanCell(string(v))
			}
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return table{}, err
	}
	return t, nil
}

// cleanCell keeps one table row on one line and long texts short.
func cleanCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return `""`
	}
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

// write prints t aligned in columns; an empty table prints "(none)".
func (t table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if len(t.Rows) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}
