package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// HTML writes the run's report as one self-contained HTML page: styles and
// the chart (SVG drawn here) are inline, and a Content-Security-Policy
// forbids the page from loading anything, so it renders the same offline,
// from an email attachment or from a CI artifact. It contains no script.
func HTML(w io.Writer, r *Run) error {
	v, err := newView(r)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := pageTemplate.Execute(&b, v.htmlData()); err != nil {
		return fmt.Errorf("rendering the HTML report: %w", err)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

type htmlPage struct {
	ID, Runbook, Hash                string
	StatusClass, StatusGlyph, Status string
	Error                            string
	Started, Finished, Duration      string
	Ended                            bool
	Resumes                          []string
	StepCounts                       string
	Milestones                       []htmlMilestone
	TotalLabel, TotalValue, TotalAt  string
	Notes                            []string
	Evidence                         []htmlKV
	Chart                            template.HTML
	Path                             []htmlPathItem
	PathSummary                      string
	Steps                            []htmlStep
	Approvals                        []htmlApproval
	Failures                         []htmlFailure
	StepErrors                       []htmlKV
	Rollbacks                        []htmlRollback
	Inputs, Outputs                  []htmlKV
	StepOutputs                      []htmlStepOutput
	Events                           []htmlEvent
}

type htmlMilestone struct{ Name, After, At, Step string }
type htmlPathItem struct {
	Within, Step, Duration string
	Rollback               bool
}
type htmlStep struct {
	ID, Name, Uses, StatusClass, Glyph, Status, Attempts, Start, Duration string
	Depth                                                                 int
	Critical, Group                                                       bool
}
type htmlApproval struct{ Step, Requested, Granted, Waited, By, Identity, Message string }
type htmlFailure struct{ Step, Attempt, At, After, Error, Outcome string }
type htmlRollback struct {
	Step, StatusClass, Glyph, Status, Start, Duration, Error string
	Critical                                                 bool
}
type htmlKV struct {
	Name, Value string
	Secret      bool
}
type htmlStepOutput struct {
	Step    string
	Outputs []htmlKV
}
type htmlEvent struct{ Time, Offset, Type, Step, Attempt, Message string }

func (v *view) htmlData() *htmlPage {
	r := v.run
	p := &htmlPage{
		ID: r.ID, Runbook: r.Runbook, Hash: shortHash(r.RunbookHash),
		StatusClass: string(r.Status), StatusGlyph: runGlyph(r.Status), Status: runStatusText(r.Status),
		Error:   oneLine(v.red.text(r.Error)),
		Started: fmtTime(v.t.origin), Ended: v.ended(),
		StepCounts: v.stepCounts(),
		TotalLabel: v.totalLabel(), TotalValue: v.totalValue(), TotalAt: fmtClock(v.t.horizon),
		Chart: template.HTML(v.ganttSVG()), // built with every text escaped (esc)
	}
	if p.Ended {
		p.Finished, p.Duration = fmtTime(r.Finished), fmtDur(v.duration())
	} else {
		p.Finished = "not recorded (last record " + fmtTime(v.t.horizon) + ")"
		p.Duration = "at least " + fmtDur(v.duration())
	}
	for _, t := range v.resumes() {
		p.Resumes = append(p.Resumes, fmtTime(t)+" ("+fmtOffset(v.offset(t))+")")
	}
	for _, m := range v.milestones() {
		p.Milestones = append(p.Milestones, htmlMilestone{Name: m.label(), After: fmtDur(m.since), At: fmtClock(m.At), Step: m.Step})
	}
	if w := v.approvalWait(); w > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("Waiting for approval: %s (%s).", fmtDur(w), plural(len(r.Approvals), "approval", "approvals")))
	}
	if k := v.retries(); k > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("Retries: %d.", k))
	}

	for _, e := range v.evidence() {
		p.Evidence = append(p.Evidence, htmlKV{Name: e.Step, Value: truncate(e.Summary, 600)})
	}
	for _, s := range v.path.Segments {
		p.Path = append(p.Path, htmlPathItem{Within: v.within(s.Step), Step: s.Step, Duration: fmtDur(s.End.Sub(s.Start)), Rollback: s.Rollback})
	}
	if len(p.Path) > 0 {
		busy := v.path.Busy()
		p.PathSummary = fmt.Sprintf("The steps on the critical path account for %s of the run's %s", fmtDur(busy), fmtDur(v.duration()))
		if gap := v.duration() - busy; gap > 0 {
			p.PathSummary += fmt.Sprintf("; %s passed between them (interpreter overhead, or a paused run waiting to be resumed)", fmtDur(gap))
		}
		p.PathSummary += ". Shortening any step that is not on it would not have shortened the run."
	}

	for _, n := range v.t.rows {
		s := n.step
		hs := htmlStep{ID: s.ID, Name: v.red.text(s.Name), Uses: s.Uses, StatusClass: statusClass(s.Status),
			Glyph: stepGlyph(s.Status), Status: stepStatusLabel(s), Depth: n.depth,
			Critical: v.path.Has(s.ID), Group: n.isGroup()}
		if hs.Group {
			hs.Uses = "parallel"
			if s.Calls != "" {
				hs.Uses = "calls " + s.Calls
			}
		}
		if s.Status == StepSkipped && s.SkipReason != "" {
			hs.Status += " (" + oneLine(v.red.text(s.SkipReason)) + ")"
		}
		if rb := s.Rollback; rb != nil {
			hs.Status += ", " + rollbackStatusText(rb.Status)
			if rb.Status == StepFailed {
				hs.StatusClass = "rollback-failed"
			}
		}
		if k := len(s.Attempts); k > 0 {
			hs.Attempts = fmt.Sprint(k)
		}
		if n.ran {
			hs.Start = fmtOffset(v.offset(n.start))
		}
		if n.took() {
			hs.Duration = fmtDur(n.end.Sub(n.start))
			if n.open {
				hs.Duration += " (not finished)"
			}
		}
		p.Steps = append(p.Steps, hs)
	}

	for _, a := range r.Approvals {
		ha := htmlApproval{Step: a.Step, By: v.red.text(a.By), Identity: v.red.text(a.Identity), Message: oneLine(v.red.text(a.Message)), Granted: v.approvalAnswer(a),
			Requested: fmtClock(a.RequestedAt) + " (" + fmtOffset(v.offset(a.RequestedAt)) + ")"}
		end := a.GrantedAt
		if end.IsZero() {
			end = v.t.horizon
		}
		if !a.RequestedAt.IsZero() {
			ha.Waited = fmtDur(end.Sub(a.RequestedAt))
			if a.GrantedAt.IsZero() {
				ha.Waited = "at least " + ha.Waited
			}
		}
		p.Approvals = append(p.Approvals, ha)
	}

	for _, f := range v.failedAttempts() {
		a := f.attempt
		hf := htmlFailure{Step: f.step.step.ID, Attempt: fmt.Sprint(a.N), At: fmtOffset(v.offset(a.Finished)),
			Error: truncate(oneLine(v.red.text(a.Error)), 600), Outcome: attemptOutcome(f)}
		if !a.Started.IsZero() && !a.Finished.IsZero() {
			hf.After = fmtDur(a.Finished.Sub(a.Started))
		}
		p.Failures = append(p.Failures, hf)
	}
	for _, n := range v.t.rows {
		if n.step.Error != "" {
			p.StepErrors = append(p.StepErrors, htmlKV{Name: n.step.ID, Value: oneLine(v.red.text(n.step.Error))})
		}
	}

	for _, n := range v.rollbacks() {
		rb := n.step.Rollback
		hr := htmlRollback{Step: n.step.ID, Status: rollbackStatusText(rb.Status), Glyph: "↶", StatusClass: "rolled-back",
			Error: oneLine(v.red.text(rb.Error)), Critical: v.path.HasRollback(n.step.ID)}
		if rb.Status == StepFailed {
			hr.Glyph, hr.StatusClass = "✗", "failed"
		}
		if s, e, ok := v.t.rollbackInterval(n); ok {
			hr.Start, hr.Duration = fmtOffset(v.offset(s)), fmtDur(e.Sub(s))
		}
		p.Rollbacks = append(p.Rollbacks, hr)
	}

	for _, in := range r.Inputs {
		kv := htmlKV{Name: in.Name, Value: redacted, Secret: in.Secret}
		if !in.Secret {
			kv.Value = truncate(v.red.value(in.Value), 400)
		}
		p.Inputs = append(p.Inputs, kv)
	}
	for _, o := range r.Outputs {
		kv := htmlKV{Name: o.Name, Value: redacted, Secret: o.Secret}
		if !o.Secret {
			kv.Value = truncate(v.red.value(o.Value), 400)
		}
		p.Outputs = append(p.Outputs, kv)
	}
	for _, n := range v.t.rows {
		if len(n.step.Outputs) == 0 {
			continue
		}
		so := htmlStepOutput{Step: n.step.ID}
		for _, k := range sortedKeys(n.step.Outputs) {
			so.Outputs = append(so.Outputs, htmlKV{Name: k, Value: truncate(v.red.value(n.step.Outputs[k]), 600)})
		}
		p.StepOutputs = append(p.StepOutputs, so)
	}
	for _, e := range r.Events {
		he := htmlEvent{Time: fmtStamp(e.At), Offset: fmtOffset(v.offset(e.At)), Type: e.Type, Step: e.Step,
			Message: truncate(oneLine(v.red.text(e.Message)), 600)}
		if e.Attempt > 0 {
			he.Attempt = fmt.Sprint(e.Attempt)
		}
		p.Events = append(p.Events, he)
	}
	return p
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"indent": func(depth int) string { return fmt.Sprintf("%.1f", 0.4+1.4*float64(depth)) },
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="runbook report">
<title>Run {{.ID}}: {{.Runbook}} ({{.Status}})</title>
<style>
:root{--ok:#0072B2;--fail:#D55E00;--wait:#E69F00;--rb:#CC79A7;--ink:#1a1a1a;--muted:#555;--rule:#d0d0d0}
*{box-sizing:border-box}
body{margin:0 auto;padding:1.5rem 2rem 3rem;max-width:1260px;color:var(--ink);background:#fff;font:15px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans","Liberation Sans",Arial,sans-serif}
h1{font-size:1.55rem;margin:0 0 .4rem}h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid var(--rule)}
code{font:.9em/1.3 ui-monospace,"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;overflow-wrap:break-word}
td.value code,td.value{overflow-wrap:anywhere}
.badge{display:inline-block;margin:.2rem 0 .6rem;padding:.25rem .7rem;border:2px solid;border-radius:4px;font-weight:700;letter-spacing:.02em}
.badge .glyph{font-size:1.1em;margin-right:.3em}
.badge.succeeded{color:#00507d;border-color:var(--ok);background:#e6f1f8}
.badge.failed,.badge.rollback_failed{color:#8f3d00;border-color:var(--fail);background:#fbeae0;border-style:double;border-width:4px}
.badge.rolled_back{color:#6e2a55;border-color:var(--rb);background:#f8ebf3}
.badge.paused,.badge.running,.badge.interrupted{color:#6b4600;border-color:var(--wait);background:#fdf3df;border-style:dashed}
.run-error{margin:.2rem 0 .8rem;padding:.5rem .8rem;border-left:4px solid var(--fail);background:#fdf1ea}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1.2rem;margin:.4rem 0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.3rem 0 .8rem;font-size:.93rem}
table.compact{width:auto;min-width:50%}
th,td{text-align:left;vertical-align:top;padding:.3rem .55rem;border-bottom:1px solid var(--rule)}
th{background:#f2f2f2;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:700;border-top:2px solid var(--ink)}
tr.group td{background:#f7f7f7}
.critmark{display:inline-block;width:.7em;height:.7em;background:#000;transform:rotate(45deg);margin-right:.35em}
.st-failed,.st-rollback-failed{color:#9a3f00;font-weight:600}
.st-succeeded{color:#00507d}
.st-skipped,.st-pending{color:var(--muted)}
ol.path{margin:.3rem 0;padding-left:1.4rem}ol.path li{margin:.1rem 0}
.chart{overflow-x:auto;margin:.4rem 0 0}.chart svg{max-width:100%;height:auto;display:block}
.secret{color:var(--muted);font-style:italic}
footer{margin-top:2.5rem;color:var(--muted);font-size:.85rem}
@media print{body{padding:0;max-width:none;font-size:11pt}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}tr,.chart{break-inside:avoid}}
</style>
</head>
<body>
<header>
<h1>Run <code>{{.ID}}</code>: {{.Runbook}}</h1>
<p class="badge {{.StatusClass}}" id="run-status"><span class="glyph" aria-hidden="true">{{.StatusGlyph}}</span>{{.Status}}</p>
{{- if .Error}}
<p class="run-error">{{.Error}}</p>
{{- end}}
<dl class="facts">
<dt>Runbook</dt><dd>{{.Runbook}}{{if .Hash}} <code title="sha256 of the runbook source">sha256 {{.Hash}}</code>{{end}}</dd>
<dt>Started</dt><dd>{{.Started}}</dd>
<dt>Finished</dt><dd>{{.Finished}}</dd>
<dt>Duration</dt><dd>{{.Duration}}</dd>
{{- range .Resumes}}
<dt>Resumed</dt><dd>{{.}}</dd>
{{- end}}
<dt>Steps</dt><dd>{{.StepCounts}}</dd>
</dl>
</header>

<section id="recovery-time">
<h2>Recovery time</h2>
<table class="compact">
<thead><tr><th>Milestone</th><th>Reached after</th><th>At (UTC)</th><th>Step</th></tr></thead>
<tbody>
{{- range .Milestones}}
<tr><td>{{.Name}}</td><td class="num">{{.After}}</td><td class="num">{{.At}}</td><td>{{if .Step}}<code>{{.Step}}</code>{{end}}</td></tr>
{{- end}}
<tr class="total"><td>{{.TotalLabel}}</td><td class="num">{{.TotalValue}}</td><td class="num">{{.TotalAt}}</td><td></td></tr>
</tbody>
</table>
{{- if not .Milestones}}
<p>No milestones were recorded for this run.</p>
{{- end}}
{{- if .Notes}}
<p>{{range $i, $n := .Notes}}{{if $i}} {{end}}{{$n}}{{end}}</p>
{{- end}}
</section>

{{- if .Evidence}}

<section id="evidence">
<h2>What ended each wait</h2>
<table>
<thead><tr><th>Step</th><th>Evidence</th></tr></thead>
<tbody>
{{- range .Evidence}}
<tr><td><code>{{.Name}}</code></td><td>{{.Value}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}

<section id="timeline">
<h2>Timeline</h2>
<div class="chart">
{{.Chart}}
</div>
</section>

<section id="critical-path">
<h2>Critical path</h2>
{{- if .Path}}
<ol class="path">
{{- range .Path}}
<li>{{if .Rollback}}rollback of {{end}}{{if .Within}}{{.Within}} › {{end}}<code>{{.Step}}</code> {{.Duration}}</li>
{{- end}}
</ol>
<p>{{.PathSummary}}</p>
{{- else}}
<p>No step took any time.</p>
{{- end}}
</section>

<section id="steps">
<h2>Steps</h2>
<table>
<thead><tr><th>Critical</th><th>Step</th><th>Action</th><th>Status</th><th>Attempts</th><th>Start</th><th>Duration</th></tr></thead>
<tbody>
{{- range .Steps}}
<tr class="{{if .Group}}group{{end}}{{if .Critical}} crit{{end}}" data-step="{{.ID}}">
<td>{{if .Critical}}<span class="critmark" aria-hidden="true"></span>yes{{end}}</td>
<td style="padding-left:{{indent .Depth}}em"><code>{{.ID}}</code>{{if .Name}} {{.Name}}{{end}}</td>
<td>{{if .Group}}parallel{{else}}<code>{{.Uses}}</code>{{end}}</td>
<td class="st-{{.StatusClass}}"><span aria-hidden="true">{{.Glyph}}</span> {{.Status}}</td>
<td class="num">{{.Attempts}}</td><td class="num">{{.Start}}</td><td class="num">{{.Duration}}</td>
</tr>
{{- end}}
</tbody>
</table>
</section>
{{- if .Approvals}}

<section id="approvals">
<h2>Approvals</h2>
<table>
<thead><tr><th>Step</th><th>Requested</th><th>Answer</th><th>Waited</th><th>By</th><th>Message</th></tr></thead>
<tbody>
{{- range .Approvals}}
<tr><td><code>{{.Step}}</code></td><td class="num">{{.Requested}}</td><td class="num">{{.Granted}}</td><td class="num">{{.Waited}}</td><td>{{.By}}{{if .Identity}}<br><small class="identity">{{.Identity}}</small>{{end}}</td><td>{{.Message}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- if or .Failures .StepErrors}}

<section id="errors">
<h2>Retries and errors</h2>
{{- if .Failures}}
<table>
<thead><tr><th>Step</th><th>Attempt</th><th>At</th><th>After</th><th>Error</th><th>Outcome</th></tr></thead>
<tbody>
{{- range .Failures}}
<tr><td><code>{{.Step}}</code></td><td class="num">{{.Attempt}}</td><td class="num">{{.At}}</td><td class="num">{{.After}}</td><td class="value">{{.Error}}</td><td>{{.Outcome}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .StepErrors}}
<ul>
{{- range .StepErrors}}
<li><code>{{.Name}}</code> failed: {{.Value}}</li>
{{- end}}
</ul>
{{- end}}
</section>
{{- end}}
{{- if .Rollbacks}}

<section id="rollbacks">
<h2>Rollbacks</h2>
<p>Compensations run in reverse completion order after the failure.</p>
<table>
<thead><tr><th>Critical</th><th>Step</th><th>Status</th><th>Start</th><th>Duration</th><th>Error</th></tr></thead>
<tbody>
{{- range .Rollbacks}}
<tr{{if .Critical}} class="crit"{{end}}><td>{{if .Critical}}<span class="critmark" aria-hidden="true"></span>yes{{end}}</td><td><code>{{.Step}}</code></td><td class="st-{{.StatusClass}}"><span aria-hidden="true">{{.Glyph}}</span> {{.Status}}</td><td class="num">{{.Start}}</td><td class="num">{{.Duration}}</td><td>{{.Error}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}

<section id="inputs">
<h2>Inputs</h2>
{{- if .Inputs}}
<table>
<thead><tr><th>Name</th><th>Value</th></tr></thead>
<tbody>
{{- range .Inputs}}
<tr><td><code>{{.Name}}</code></td><td class="value">{{if .Secret}}<span class="secret">{{.Value}} (secret)</span>{{else}}<code>{{.Value}}</code>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>None.</p>
{{- end}}
</section>
{{- if .Outputs}}

<section id="outputs">
<h2>Outputs</h2>
<table>
<thead><tr><th>Name</th><th>Value</th></tr></thead>
<tbody>
{{- range .Outputs}}
<tr><td><code>{{.Name}}</code></td><td class="value">{{if .Secret}}<span class="secret">{{.Value}} (secret)</span>{{else}}<code>{{.Value}}</code>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- if .StepOutputs}}

<section id="step-outputs">
<h2>Appendix: step outputs</h2>
<table>
<thead><tr><th>Step</th><th>Output</th><th>Value</th></tr></thead>
<tbody>
{{- range .StepOutputs}}{{$step := .Step}}
{{- range .Outputs}}
<tr><td><code>{{$step}}</code></td><td><code>{{.Name}}</code></td><td class="value"><code>{{.Value}}</code></td></tr>
{{- end}}
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- if .Events}}

<section id="journal">
<h2>Appendix: journal</h2>
<table>
<thead><tr><th>Time (UTC)</th><th>Offset</th><th>Event</th><th>Step</th><th>Attempt</th><th>Message</th></tr></thead>
<tbody>
{{- range .Events}}
<tr><td class="num">{{.Time}}</td><td class="num">{{.Offset}}</td><td>{{.Type}}</td><td>{{if .Step}}<code>{{.Step}}</code>{{end}}</td><td class="num">{{.Attempt}}</td><td class="value">{{.Message}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}

<footer>Report of run <code>{{.ID}}</code>, written by runbook from the run's journal. Times are UTC; offsets are from the start of the run.</footer>
</body>
</html>
`
