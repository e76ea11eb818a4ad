package report

import (
	"fmt"
	"strings"
	"time"
)

// asciiWidth is the number of character cells of the text chart's time axis.
const asciiWidth = 64

// asciiLegend explains the text chart's characters.
const asciiLegend = "= attempt  x failed attempt  . retry delay  ? waiting for approval  " +
	"< rollback  ! failed rollback  s skipped  - parallel group  * critical path"

// asciiGantt draws the run as a fixed-width text chart, for the Markdown
// report and terminals: one row per step, time left to right.
func (v *view) asciiGantt(b *strings.Builder) {
	span := v.duration()
	if span <= 0 {
		span = time.Second
	}
	col := func(t time.Time) int {
		c := int(int64(asciiWidth) * int64(t.Sub(v.t.origin)) / int64(span))
		return max(0, min(asciiWidth-1, c))
	}
	// paint fills the cells of [from, to]; every interval gets at least
	// one cell, so a two-second step in a two-hour run is still visible.
	paint := func(cells []byte, from, to time.Time, ch byte) {
		a, z := col(from), col(to)
		if to.Sub(v.t.origin)*asciiWidth%span == 0 && z > a {
			z-- // an interval ending exactly on a cell boundary does not fill the next cell
		}
		for i := a; i <= z; i++ {
			cells[i] = ch
		}
	}
	labelW := 0
	for _, n := range v.t.rows {
		labelW = max(labelW, 2*n.depth+len(n.step.ID))
	}
	labelW = min(labelW, 32)

	for _, n := range v.t.rows {
		cells := []byte(strings.Repeat(" ", asciiWidth))
		s := n.step
		switch {
		case !n.ran:
		case n.skipped():
			paint(cells, n.start, n.start, 's')
		case n.isGroup():
			paint(cells, n.start, n.end, '-')
		default:
			if len(s.Attempts) == 0 {
				ch := byte('=')
				if s.Status == StepFailed {
					ch = 'x'
				}
				paint(cells, n.start, n.end, ch)
			} else {
				paint(cells, n.start, n.end, '.')
				for _, a := range s.Attempts {
					ch := byte('=')
					if a.Error != "" {
						ch = 'x'
					}
					if !a.Started.IsZero() {
						paint(cells, a.Started, v.t.attemptEnd(a), ch)
					}
				}
			}
		}
		for _, a := range v.run.Approvals {
			if a.Step == s.ID && !a.RequestedAt.IsZero() {
				end := a.GrantedAt
				if end.IsZero() {
					end = v.t.horizon
				}
				paint(cells, a.RequestedAt, end, '?')
			}
		}
		if rs, re, ok := v.t.rollbackInterval(n); ok {
			ch := byte('<')
			if s.Rollback.Status == StepFailed {
				ch = '!'
			}
			paint(cells, rs, re, ch)
		}
		mark := ' '
		if v.path.Has(s.ID) || v.path.HasRollback(s.ID) {
			mark = '*'
		}
		label := truncate(strings.Repeat("  ", n.depth)+s.ID, labelW)
		fmt.Fprintf(b, "%c %-*s |%s| %s\n", mark, labelW, label, cells, v.asciiStatus(n))
	}
	// The axis: start and end offsets, and milestone letters under the
	// columns where they were reached.
	axis := []byte(strings.Repeat(" ", asciiWidth))
	ms := v.milestones()
	for i, m := range ms {
		if i < 26 {
			axis[col(m.At)] = byte('A' + i)
		}
	}
	fmt.Fprintf(b, "  %-*s  %s\n", labelW, "", strings.TrimRight(string(axis), " "))
	end := fmtOffset(span)
	fmt.Fprintf(b, "  %-*s  %-*s%s\n", labelW, "", asciiWidth-len(end), "+0s", end)
	for i, m := range ms {
		if i < 26 {
			fmt.Fprintf(b, "  %c: %s at %s\n", 'A'+i, m.Name, fmtOffset(m.since))
		}
	}
}

func (v *view) asciiStatus(n *node) string {
	s := n.step
	out := stepGlyph(s.Status) + " " + stepStatusLabel(s)
	if n.took() {
		out += " " + fmtDur(n.end.Sub(n.start))
	}
	if k := len(s.Attempts); k > 1 {
		out += fmt.Sprintf(", %d attempts", k)
	}
	if rb := s.Rollback; rb != nil {
		out += ", " + rollbackStatusText(rb.Status)
	}
	return out
}
