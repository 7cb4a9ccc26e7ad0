package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/dueflow/dueflow/internal/opsdb"
)

// barChart draws days stacked bars (sent, skipped, failed) ending today as
// an inline SVG, width × height pixels, with a legend and the largest value
// on the axis. Every text in it is a number or a date.
func barChart(byDay map[time.Time]opsdb.DayCount, today time.Time, days, width, height int) template.HTML {
	const left, bottom, top = 36, 22, 18
	plotW, plotH := width-left-8, height-bottom-top
	maxV := 1
	for _, d := range byDay {
		maxV = max(maxV, d.Sent+d.Skipped+d.Failed)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, width, height, width, height)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">%d</text>`, left-4, top+8, maxV)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">0</text>`, left-4, top+plotH)
	slot := float64(plotW) / float64(days)
	barW := slot * 0.7
	for i := 0; i < days; i++ {
		day := today.AddDate(0, 0, i-days+1)
		d := byDay[day]
		x := float64(left) + float64(i)*slot + (slot-barW)/2
		y := float64(top + plotH)
		for _, part := range []struct {
			v     int
			class string
		}{{d.Sent, "sent"}, {d.Skipped, "skipped"}, {d.Failed, "failed"}} {
			if part.v == 0 {
				continue
			}
			h := float64(part.v) / float64(maxV) * float64(plotH)
			y -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="%s"><title>%s %s: %d</title></rect>`,
				x, y, barW, h, part.class, day.Format("2006-01-02"), part.class, part.v)
		}
		if i%max(1, days/7) == 0 || i == days-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x+barW/2, height-6, day.Format("01-02"))
		}
	}
	lx := left
	for _, l := range []string{"sent", "skipped", "failed"} {
		fmt.Fprintf(&b, `<rect x="%d" y="4" width="10" height="10" class="%s"/><text x="%d" y="13" class="tick">%s</text>`, lx, l, lx+14, l)
		lx += 70
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
