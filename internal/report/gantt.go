package report

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"time"
)

// Gantt chart geometry, in SVG user units (pixels at 100% zoom).
const (
	gW        = 1180.0 // whole chart
	gLabelW   = 300.0  // step labels on the left
	gChartX   = 312.0  // time axis from here...
	gChartW   = 600.0  // ...this wide
	gStatusX  = 928.0  // status text on the right
	gLaneH    = 15.0   // one line of milestone labels above the rows
	gAxisH    = 26.0   // tick labels below the rows
	gRowH     = 24.0
	gBarH     = 14.0
	gIndent   = 14.0
	gMinBar   = 2.0 // so a step of a few milliseconds is still visible
	gSkipW    = 6.0 // the marker of a skipped step
	gLegendH  = 56.0
	gCharW    = 6.6 // average advance of a 12px sans-serif character, for truncation
	gStatusCh = 38  // characters that fit in the status column
	// gMilestoneCharW is the advance of a bold 11.5px character.
	gMilestoneCharW = 6.9
)

// ganttSVG draws the run as an SVG Gantt chart: one row per step, attempts
// as segments, retry delays as the lighter part of a bar, approval waits
// striped, rollbacks hatched with a dashed outline, the critical path
// outlined in black and underlined, milestones as vertical dashed lines.
// Everything that colour says is also said by a pattern, a shape or text.
func (v *view) ganttSVG() string {
	var b strings.Builder
	rows := v.t.rows
	span := v.duration()
	if span <= 0 {
		span = time.Second
	}
	x := func(t time.Time) float64 {
		return gChartX + gChartW*float64(t.Sub(v.t.origin))/float64(span)
	}
	width := func(a, z time.Time) float64 { return max(x(z)-x(a), gMinBar) }

	marks := v.milestones()
	for _, t := range v.resumes() {
		marks = append(marks, milestone{Milestone: Milestone{Name: "resumed", At: t}, since: v.offset(t), resume: true})
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].At.Before(marks[j].At) })
	labels, lanes := placeMilestones(marks, x)
	top := 10.0
	if lanes > 0 {
		top = 8 + float64(lanes)*gLaneH + 4
	}
	rowsH := float64(len(rows)) * gRowH
	bottom := top + rowsH
	h := bottom + gAxisH + gLegendH

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="gantt-title gantt-desc">`+"\n", gW, h, gW, h)
	fmt.Fprintf(&b, `<title id="gantt-title">Timeline of run %s</title>`+"\n", esc(v.run.ID))
	fmt.Fprintf(&b, `<desc id="gantt-desc">%d steps over %s; %d on the critical path.</desc>`+"\n",
		len(rows), esc(fmtDur(v.duration())), len(v.path.Steps))
	b.WriteString(ganttStyle)
	b.WriteString(ganttDefs)

	// Row stripes and the time grid go under everything else; the axis
	// labels are at the bottom, leaving the top to the milestones.
	for i := range rows {
		if i%2 == 1 {
			fmt.Fprintf(&b, `<rect class="stripe" x="0" y="%.1f" width="%.0f" height="%.0f"/>`+"\n", top+float64(i)*gRowH, gW, gRowH)
		}
	}
	tick := niceTick(span)
	for d := time.Duration(0); d <= span; d += tick {
		tx := gChartX + gChartW*float64(d)/float64(span)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, tx, top, tx, bottom+4)
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", tx, bottom+16, esc(fmtTick(d)))
	}

	for i, n := range rows {
		v.ganttRow(&b, n, top+float64(i)*gRowH, x, width)
	}

	// Milestones over the rows, each label in the highest lane where it
	// does not overlap another.
	for _, l := range labels {
		m := l.m
		ly := 8 + float64(l.lane)*gLaneH + 10
		if m.resume {
			fmt.Fprintf(&b, `<g class="milestone resume"><title>run resumed at %s (%s)</title>`, esc(fmtOffset(m.since)), esc(fmtTime(m.At)))
		} else {
			fmt.Fprintf(&b, `<g class="milestone"><title>%s reached at %s (%s)</title>`, esc(m.Name), esc(fmtOffset(m.since)), esc(fmtTime(m.At)))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, l.x, ly+1, l.x, bottom)
		fmt.Fprintf(&b, `<path class="milestone-mark" d="M%.1f %.1fl4 4-4 4-4-4z"/>`, l.x, ly-8)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text></g>`+"\n", l.textX, ly, l.anchor, esc(l.text))
	}

	v.ganttLegend(&b, bottom+gAxisH)
	b.WriteString("</svg>")
	return b.String()
}

// milestoneLabel is a milestone placed above the chart.
type milestoneLabel struct {
	m            milestone
	text, anchor string
	x, textX     float64
	lane         int
}

// placeMilestones gives each milestone label a lane above the chart:
// labels run right of their line, or left of it near the right edge, and
// go down a lane when they would overlap the previous label in a lane.
func placeMilestones(ms []milestone, x func(time.Time) float64) ([]milestoneLabel, int) {
	const maxLanes = 4
	var out []milestoneLabel
	var laneEnd []float64 // right edge of the last label in each lane
	for _, m := range ms {
		l := milestoneLabel{m: m, text: m.Name + " " + fmtOffset(m.since), x: x(m.At)}
		w := float64(len([]rune(l.text)))*gMilestoneCharW + 4
		left, right := l.x+7, l.x+7+w
		l.anchor, l.textX = "start", l.x+7
		if right > gW-4 {
			l.anchor, l.textX = "end", l.x-7
			left, right = l.x-7-w, l.x+4
		}
		l.lane = -1
		for i, end := range laneEnd {
			if left > end+8 {
				l.lane = i
				break
			}
		}
		if l.lane < 0 && len(laneEnd) < maxLanes {
			laneEnd = append(laneEnd, 0)
			l.lane = len(laneEnd) - 1
		}
		if l.lane < 0 { // all lanes taken: the one that frees first
			l.lane = 0
			for i, end := range laneEnd {
				if end < laneEnd[l.lane] {
					l.lane = i
				}
			}
		}
		laneEnd[l.lane] = max(laneEnd[l.lane], right)
		out = append(out, l)
	}
	return out, len(laneEnd)
}

func (v *view) ganttRow(b *strings.Builder, n *node, y float64, x func(time.Time) float64, width func(a, z time.Time) float64) {
	s := n.step
	crit := v.path.Has(s.ID)
	critClass := ""
	if crit {
		critClass = " critical"
	}
	fmt.Fprintf(b, `<g class="row status-%s%s" data-step="%s">`+"\n", statusClass(s.Status), critClass, esc(s.ID))

	// Label: the critical-path diamond, then the id and name, indented by
	// nesting depth.
	if crit {
		fmt.Fprintf(b, `<path class="critical-diamond" d="M10 %.1fl5 5-5 5-5-5z"/>`, y+gRowH/2-5)
	}
	lx := 22 + float64(n.depth)*gIndent
	room := int((gLabelW - lx) / gCharW)
	label := s.ID
	name := v.red.text(s.Name)
	fmt.Fprintf(b, `<text class="label" x="%.1f" y="%.1f">`, lx, y+gRowH/2+4)
	if len(label) >= room {
		fmt.Fprintf(b, `<tspan class="id">%s</tspan>`, esc(truncate(label, room)))
	} else {
		fmt.Fprintf(b, `<tspan class="id">%s</tspan>`, esc(label))
		if name != "" && room-len(label)-1 > 3 {
			fmt.Fprintf(b, ` <tspan class="name">%s</tspan>`, esc(truncate(name, room-len(label)-1)))
		}
	}
	fmt.Fprintf(b, `<title>%s</title></text>`+"\n", esc(strings.TrimSpace(s.ID+" "+name)))

	barY := y + (gRowH-gBarH)/2
	switch {
	case !n.ran:
	case n.skipped():
		fmt.Fprintf(b, `<rect class="bar step-skipped" data-step="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s skipped at %s%s</title></rect>`+"\n",
			esc(s.ID), x(n.start)-gSkipW/2, barY+2, gSkipW, gBarH-4, esc(s.ID), esc(fmtOffset(v.offset(n.start))), esc(v.skipReason(s)))
	case n.isGroup():
		gx, gw := x(n.start), width(n.start, n.end)
		fmt.Fprintf(b, `<rect class="bar group%s" data-step="%s" x="%.1f" y="%.1f" width="%.1f" height="6"><title>parallel group %s: %s</title></rect>`,
			critClass, esc(s.ID), gx, barY+4, gw, esc(s.ID), esc(fmtDur(n.end.Sub(n.start))))
		fmt.Fprintf(b, `<path class="group-ends" d="M%.1f %.1fv10M%.1f %.1fv10"/>`+"\n", gx+0.75, barY+4, gx+gw-0.75, barY+4)
		if crit {
			fmt.Fprintf(b, `<rect class="critical-mark" x="%.1f" y="%.1f" width="%.1f" height="2.5"/>`+"\n", gx, barY+gBarH+2, gw)
		}
	default:
		v.ganttAction(b, n, barY, critClass, x, width)
	}

	// Approval waits: their own striped segment on the step's row.
	for _, a := range v.run.Approvals {
		if a.Step != s.ID || a.RequestedAt.IsZero() {
			continue
		}
		end, what := a.GrantedAt, "approved by "+v.red.text(a.By)
		if a.Denied {
			what = "denied by " + v.red.text(a.By)
		}
		if end.IsZero() {
			end, what = v.t.horizon, "still waiting"
		}
		fmt.Fprintf(b, `<rect class="wait" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>waiting for approval %s, %s</title></rect>`+"\n",
			x(a.RequestedAt), barY, width(a.RequestedAt, end), gBarH, esc(fmtDur(end.Sub(a.RequestedAt))), esc(what))
	}

	// The rollback, after the forward steps, on the same row.
	if rs, re, ok := v.t.rollbackInterval(n); ok {
		rb := s.Rollback
		cls := "ok"
		switch rb.Status {
		case StepFailed:
			cls = "failed"
		case StepSucceeded:
		default:
			cls = "open"
		}
		rc := ""
		if v.path.HasRollback(s.ID) {
			rc = " critical"
		}
		detail := rollbackStatusText(rb.Status) + " in " + fmtDur(re.Sub(rs))
		if rb.Error != "" {
			detail += ": " + oneLine(v.red.text(rb.Error))
		}
		fmt.Fprintf(b, `<rect class="rollback rollback-%s%s" data-step="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>rollback of %s: %s</title></rect>`+"\n",
			cls, rc, esc(s.ID), x(rs), barY, width(rs, re), gBarH, esc(s.ID), esc(truncate(detail, 400)))
		if rc != "" {
			fmt.Fprintf(b, `<rect class="critical-mark" x="%.1f" y="%.1f" width="%.1f" height="2.5"/>`+"\n", x(rs), barY+gBarH+2, width(rs, re))
		}
	}

	// Status, in shape and in words.
	sy := y + gRowH/2
	fmt.Fprintf(b, `<g transform="translate(%.1f %.1f)">%s</g>`, gStatusX+6, sy, statusIcon(s.Status))
	fmt.Fprintf(b, `<text class="status" x="%.1f" y="%.1f">%s</text>`+"\n", gStatusX+16, sy+4, esc(truncate(v.statusLine(n), gStatusCh)))
	b.WriteString("</g>\n")
}

// ganttAction draws an action's bar: the whole interval lightly, each
// attempt over it in full colour (failed attempts cross-hatched), so the
// gaps between attempts are the retry delays.
func (v *view) ganttAction(b *strings.Builder, n *node, barY float64, critClass string, x func(time.Time) float64, width func(a, z time.Time) float64) {
	s := n.step
	open := ""
	if n.open {
		open = " open"
	}
	fmt.Fprintf(b, `<rect class="bar step-%s%s%s" data-step="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`+"\n",
		statusClass(s.Status), critClass, open, esc(s.ID), x(n.start), barY, width(n.start, n.end), gBarH, esc(v.barTitle(n)))
	attempts := s.Attempts
	if len(attempts) == 0 {
		// No attempt records: the step's own interval is its one attempt.
		a := Attempt{N: 1, Started: n.start, Finished: n.end}
		if s.Status == StepFailed {
			a.Error = s.Error
			if a.Error == "" {
				a.Error = "failed"
			}
		}
		if n.open {
			a.Finished = time.Time{}
		}
		attempts = []Attempt{a}
	}
	for _, a := range attempts {
		if a.Started.IsZero() {
			continue
		}
		end := v.t.attemptEnd(a)
		cls, what := "ok", "succeeded"
		switch {
		case a.Error != "":
			cls, what = "failed", "failed: "+oneLine(v.red.text(a.Error))
		case a.Finished.IsZero():
			cls, what = "open", "not finished"
		}
		fmt.Fprintf(b, `<rect class="attempt attempt-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s attempt %d, %s, %s</title></rect>`+"\n",
			cls, x(a.Started), barY, width(a.Started, end), gBarH, esc(s.ID), a.N, esc(fmtDur(end.Sub(a.Started))), esc(truncate(what, 400)))
	}
	// The outline goes over the attempts so that the critical path's
	// heavy border is not hidden by them.
	fmt.Fprintf(b, `<rect class="outline%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", critClass, x(n.start), barY, width(n.start, n.end), gBarH)
	if critClass != "" {
		fmt.Fprintf(b, `<rect class="critical-mark" x="%.1f" y="%.1f" width="%.1f" height="2.5"/>`+"\n", x(n.start), barY+gBarH+2, width(n.start, n.end))
	}
}

func (v *view) barTitle(n *node) string {
	s := n.step
	t := fmt.Sprintf("%s (%s): %s, %s from %s", s.ID, s.Uses, stepStatusText(s.Status), fmtDur(n.end.Sub(n.start)), fmtOffset(v.offset(n.start)))
	if k := len(s.Attempts); k > 1 {
		t += fmt.Sprintf(", %d attempts", k)
	}
	if v.path.Has(s.ID) {
		t += ", on the critical path"
	}
	if s.Error != "" {
		t += ": " + oneLine(v.red.text(s.Error))
	}
	return truncate(t, 500)
}

func (v *view) skipReason(s *Step) string {
	if s.SkipReason == "" {
		return ""
	}
	return ": " + oneLine(v.red.text(s.SkipReason))
}

// statusLine is the text in the chart's status column.
func (v *view) statusLine(n *node) string {
	s := n.step
	var parts []string
	switch {
	case s.Status == StepPending:
		parts = append(parts, "not started")
	case n.took():
		parts = append(parts, stepStatusLabel(s)+" "+fmtDur(n.end.Sub(n.start)))
	default:
		parts = append(parts, stepStatusLabel(s))
	}
	if k := len(s.Attempts); k > 1 {
		parts = append(parts, fmt.Sprintf("%d attempts", k))
	}
	if rb := s.Rollback; rb != nil {
		parts = append(parts, rollbackStatusText(rb.Status))
	}
	for _, a := range v.run.Approvals {
		if a.Step == s.ID && !a.GrantedAt.IsZero() && a.By != "" {
			verb := "by "
			if a.Denied {
				verb = "denied by "
			}
			parts = append(parts, verb+v.red.text(a.By))
		}
	}
	return strings.Join(parts, ", ")
}

// statusIcon is a shape per status, so the chart does not rely on colour.
func statusIcon(s StepStatus) string {
	switch s {
	case StepSucceeded:
		return `<circle class="icon icon-ok" r="5.5"/><path class="icon-mark" d="M-3 0l2 2.5 4-5"/>`
	case StepFailed:
		return `<path class="icon icon-failed" d="M-4.5-4.5l9 9M4.5-4.5l-9 9"/>`
	case StepSkipped:
		return `<circle class="icon icon-hollow" r="5"/><path class="icon-line" d="M-3.5 3.5l7-7"/>`
	case StepPending:
		return `<circle class="icon icon-hollow" r="5"/>`
	case StepWaiting:
		return `<path class="icon icon-wait" d="M-3.5-5h2.5v10h-2.5zM1-5h2.5v10h-2.5z"/>`
	}
	return `<rect class="icon icon-open" x="-4.5" y="-4.5" width="9" height="9"/>`
}

func (v *view) ganttLegend(b *strings.Builder, y float64) {
	type item struct{ swatch, text string }
	items := []item{
		{`<rect class="attempt attempt-ok" width="24" height="12"/>`, "attempt succeeded"},
		{`<rect class="attempt attempt-failed" width="24" height="12"/>`, "attempt failed"},
		{`<rect class="bar step-succeeded" width="24" height="12"/>`, "retry delay"},
		{`<rect class="wait" width="24" height="12"/>`, "waiting for approval"},
		{`<rect class="rollback rollback-ok" width="24" height="12"/>`, "rollback"},
		{`<rect class="rollback rollback-failed" width="24" height="12"/>`, "rollback failed"},
		{`<rect class="attempt attempt-open" width="24" height="12"/>`, "not finished"},
		{`<rect class="bar group" y="3" width="24" height="6"/>`, "parallel group"},
		{`<rect class="bar step-skipped" x="9" width="6" height="12"/>`, "skipped"},
		{`<rect class="attempt attempt-ok" width="24" height="12"/><rect class="outline critical" width="24" height="12"/><rect class="critical-mark" y="14" width="24" height="2.5"/>`, "critical path"},
		{`<line class="milestone-line" x1="12" y1="-2" x2="12" y2="16"/>`, "milestone"},
		{`<line class="resume-line" x1="12" y1="-2" x2="12" y2="16"/>`, "run resumed"},
	}
	const perRow = 6
	const colW = gW / perRow
	fmt.Fprintf(b, `<g class="legend" transform="translate(0 %.1f)">`+"\n", y)
	for i, it := range items {
		lx := 12 + float64(i%perRow)*colW
		ly := 8 + float64(i/perRow)*24
		fmt.Fprintf(b, `<g transform="translate(%.1f %.1f)">%s<text x="32" y="10">%s</text></g>`+"\n", lx, ly, it.swatch, esc(it.text))
	}
	b.WriteString("</g>\n")
}

// niceTick picks a grid interval giving at most about ten lines.
func niceTick(span time.Duration) time.Duration {
	steps := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	}
	for _, s := range steps {
		if span/s <= 10 {
			return s
		}
	}
	return span / 10
}

// fmtTick is a compact axis label: "0", "30s", "1m", "1m30s", "2h".
func fmtTick(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0 && d > time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0 && d > time.Minute:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmtDur(d)
}

func esc(s string) string { return html.EscapeString(s) }

// ganttDefs are the fill patterns. Each status has a pattern as well as a
// colour, so the chart reads in greyscale print and for colour-blind
// readers (the palette is Okabe and Ito's).
const ganttDefs = `<defs>
<pattern id="p-failed" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#D55E00"/><path d="M0 0l6 6M6 0l-6 6" stroke="#fff" stroke-width="1.2"/></pattern>
<pattern id="p-wait" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#E69F00"/><rect width="3" height="8" fill="#fff"/></pattern>
<pattern id="p-rollback" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="6" height="6" fill="#f3dbe8"/><rect width="2" height="6" fill="#CC79A7"/></pattern>
<pattern id="p-open" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#56B4E9"/><circle cx="3" cy="3" r="1.2" fill="#fff"/></pattern>
</defs>
`

// ganttStyle travels inside the SVG, so the chart keeps its look when it is
// copied out of the page.
const ganttStyle = `<style>
.gantt text{font-family:system-ui,-apple-system,"Segoe UI","DejaVu Sans","Liberation Sans",Arial,sans-serif;fill:#1a1a1a}
.gantt .label{font-size:12px}.gantt .label .id{font-weight:600}.gantt .label .name{fill:#444}
.gantt .status,.gantt .legend text{font-size:11.5px}
.gantt .tick{font-size:11px;fill:#555}
.gantt .stripe{fill:#f4f4f4}
.gantt .grid{stroke:#d9d9d9;stroke-width:1}
.gantt .bar.step-succeeded{fill:#cfe3f1}
.gantt .bar.step-failed{fill:#f6d6c2}
.gantt .bar.step-running,.gantt .bar.step-waiting,.gantt .bar.step-interrupted,.gantt .bar.step-unknown{fill:#d8eefa}
.gantt .bar.step-skipped{fill:#fff;stroke:#555;stroke-width:1.2;stroke-dasharray:2 1.5}
.gantt .bar.group{fill:#4d4d4d}
.gantt .group-ends{stroke:#4d4d4d;stroke-width:1.5;fill:none}
.gantt .attempt-ok{fill:#0072B2}
.gantt .attempt-failed{fill:url(#p-failed)}
.gantt .attempt-open{fill:url(#p-open)}
.gantt .attempt{stroke:#fff;stroke-width:1}
.gantt .outline{fill:none;stroke:#333;stroke-width:.6}
.gantt .outline.critical{stroke:#000;stroke-width:2.2}
.gantt .critical-mark,.gantt .critical-diamond{fill:#000}
.gantt .wait{fill:url(#p-wait);stroke:#7a4d00;stroke-width:1}
.gantt .rollback{fill:url(#p-rollback);stroke:#7a3b62;stroke-width:1.4;stroke-dasharray:4 2}
.gantt .rollback-failed{stroke:#D55E00;stroke-width:2.6}
.gantt .rollback-open{stroke:#1d5f86}
.gantt .milestone line,.gantt .milestone-line{stroke:#000;stroke-width:1.2;stroke-dasharray:5 3}
.gantt .milestone-mark{fill:#000}
.gantt .resume line,.gantt .resume-line{stroke:#555;stroke-width:1.2;stroke-dasharray:1 3}.gantt .resume .milestone-mark{fill:#fff;stroke:#000}
.gantt .milestone text{font-size:11.5px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.gantt .icon-ok{fill:#0072B2}.gantt .icon-mark{fill:none;stroke:#fff;stroke-width:1.8}
.gantt .icon-failed{stroke:#D55E00;stroke-width:2.6;fill:none}
.gantt .icon-hollow{fill:#fff;stroke:#555;stroke-width:1.3}.gantt .icon-line{stroke:#555;stroke-width:1.3}
.gantt .icon-wait{fill:#E69F00;stroke:#7a4d00;stroke-width:.6}
.gantt .icon-open{fill:#56B4E9;stroke:#1d5f86}
</style>
`
