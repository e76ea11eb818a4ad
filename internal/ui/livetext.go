package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/engine"
)

// pathSkipped reports whether the row was skipped because the run took
// another path: its `if:` was false, or it is in a group or call that was
// skipped for that reason (not a step the operator skipped on resume).
func (r *liveRow) pathSkipped() bool {
	if r.status() != string(engine.StepSkipped) || r.rollback {
		return false
	}
	reason := r.v.SkipReason
	switch {
	case strings.HasPrefix(reason, "if: "):
		return true
	case strings.HasPrefix(reason, "group "), strings.HasPrefix(reason, "the call "):
		return r.group != nil && r.group.pathSkipped()
	}
	return false
}

// actionName is the row's action: from the runbook, else from its events.
func (r *liveRow) actionName() string {
	if r.uses != "" {
		return r.uses
	}
	return r.x().Uses
}

// stepKinds names what a step works on, for the line that counts steps not
// on this path: the first word of its action (plugin and action name,
// split at "." and "_") found here, else its plugin.
// Services are the endpoints a step may wait on; the other kinds are the
// built-ins'.
var stepKinds = map[string]string{
	"cloudflare": "Cloudflare", "cloudfront": "CloudFront", "route53": "Route 53", "arc": "Route 53 ARC",
	"aurora": "Aurora", "ecs": "ECS", "asg": "Auto Scaling", "s3": "S3", "iot": "IoT",
	"k8sworkers": "Kubernetes", "spacelift": "Spacelift",
}

var builtinKinds = map[string]string{"assert": "check", "approve": "approval", "log": "log", "sleep": "wait"}

func stepKind(uses string) string {
	if k := serviceOf(uses); k != "" {
		return k
	}
	plugin, action, _ := strings.Cut(uses, ".")
	if k, ok := builtinKinds[action]; ok && plugin == "core" {
		return k
	}
	if plugin == "" {
		return "other"
	}
	return clean(plugin)
}

// serviceOf is the service a step's action talks to, "" when unknown: the
// first of its words (plugin and action name, split at "." and "_") that
// names one, the action's first ("dns.cloudflare_record" is Cloudflare,
// "k8sworkers.rollout_restart" Kubernetes).
func serviceOf(uses string) string {
	words := strings.FieldsFunc(uses, func(r rune) bool { return r == '.' || r == '_' })
	for i := 1; i < len(words); i++ {
		if k, ok := stepKinds[words[i]]; ok {
			return k
		}
	}
	if len(words) > 0 {
		return stepKinds[words[0]]
	}
	return ""
}

// targetFields are progress fields that hold the target of a change: the
// live view shows them first and never cuts them.
var targetFields = []string{"to", "target"}

// noteText is a progress message with its fields as the live view shows
// them: the target of a change first, the rest sorted. It returns the
// message and fields split so that the new value is known: head, the new
// value (after the last "->" of the message, or the first target field),
// and what follows it.
func noteText(msg string, fields map[string]any) (head, target, tail string) {
	var first []string
	var rest []string
	for _, k := range targetFields {
		if v, ok := fields[k]; ok {
			first = append(first, fmt.Sprintf("%s=%v", k, v))
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "to" || k == "target" {
			continue
		}
		rest = append(rest, fmt.Sprintf("%s=%v", k, fields[k]))
	}
	fieldText := func(parts []string) string { return clean(strings.Join(parts, ", ")) }
	if i := strings.LastIndex(msg, "->"); i >= 0 {
		head, target = msg[:i], msg[i:]
		if all := append(first, rest...); len(all) > 0 {
			tail = " (" + fieldText(all) + ")"
		}
		return head, target, tail
	}
	switch {
	case len(first) > 0:
		head, target = msg+" (", fieldText(first)
		if len(rest) > 0 {
			tail = ", " + fieldText(rest)
		}
		tail += ")"
	case len(rest) > 0:
		head = msg + " (" + fieldText(rest) + ")"
	default:
		head = msg
	}
	return head, target, tail
}

// shorten fits head+target+tail in width columns without cutting the
// target (the new value of a change) while anything else can give way:
// first the end of tail, then the middle of head. When the target leaves
// too little room for head, it goes on a line of its own, indented (its
// middle is cut only when it is wider than the terminal). Without a
// target, the end is cut. Text is plain (cleaned, no escape sequences).
func shorten(head, target, tail string, width int) []string {
	h, t, rest := []rune(head), []rune(target), []rune(tail)
	if width <= 0 || len(h)+len(t)+len(rest) <= width {
		return []string{head + target + tail}
	}
	if len(t) == 0 {
		return []string{cutEnd(head+tail, width)}
	}
	if room := width - len(h) - len(t); room >= 2 {
		return []string{head + target + string(rest[:room-1]) + "…"}
	}
	more := ""
	if len(rest) > 0 {
		more = "…"
	}
	if room := width - len(t) - len([]rune(more)); room >= min(len(h), 16) {
		return []string{cutMiddle(head, room) + target + more}
	}
	// The new value on a line of its own, under the rest.
	first := head + tail
	if strings.HasSuffix(head, " (") && strings.HasPrefix(tail, ", ") {
		first = head + tail[2:]
	} else if strings.HasSuffix(head, " (") && tail == ")" {
		first = strings.TrimSuffix(head, " (")
	} else if strings.HasSuffix(head, " ") && strings.HasPrefix(tail, " ") {
		first = head + tail[1:]
	}
	return []string{cutMiddle(first, width), cutMiddle(target, width)}
}

// cutMiddle shortens s to width columns by cutting its middle.
func cutMiddle(s string, width int) string { return cut(s, width, true) }

// cutEnd shortens s to width columns by cutting its end.
func cutEnd(s string, width int) string { return cut(s, width, false) }

func cut(s string, width int, middle bool) string {
	r := []rune(s)
	if width <= 0 || len(r) <= width {
		return s
	}
	if width < 2 {
		return string(r[:max(width, 0)])
	}
	keep := width - 1
	front := keep
	if middle {
		front = keep - keep/2
	}
	return string(r[:front]) + "…" + string(r[len(r)-(keep-front):])
}

// quietAfter is how long a running attempt may go without a word before
// its sub-line says what it is waiting for, and for how long.
const quietAfter = 5 * time.Second

// waiting is what a running step whose action has said nothing for a
// while waits for: its action (in the region its progress named), for
// how long, and the attempt's bound.
func (l *Live) waiting(r *liveRow) string {
	if r.heard.IsZero() || r.noteDelay || r.isGroup || r.call || r.status() != string(engine.StepRunning) {
		return ""
	}
	quiet := l.now().Sub(r.heard)
	if quiet < quietAfter {
		return ""
	}
	uses := r.actionName()
	if r.rollback {
		uses = r.x().Uses
	}
	if strings.HasPrefix(uses, "core.") {
		return "" // a built-in waits on no endpoint
	}
	what := serviceOf(uses)
	if what == "" {
		what = uses
	}
	if r.region != "" {
		what += " in " + r.region
	}
	s := "no answer from " + what + " for " + clock(quiet)
	if r.timeout > 0 && !r.rollback {
		s += " (limit " + clock(r.timeout) + ")"
	}
	return s
}
