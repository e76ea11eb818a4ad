package engine

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/schema"
)

// DefaultMaxOutputBytes caps the outputs of one attempt, as JSON. Actions
// report identifiers, counts and states: a megabyte is far past what any
// first-party action returns, and every output is journaled and kept in
// memory for expressions. Options.MaxOutputBytes (the CLI:
// RUNBOOK_MAX_OUTPUT_BYTES) changes it, up to expr.MaxValueBytes.
const DefaultMaxOutputBytes = 1 << 20

// MaxErrorBytes caps an action's error message as it is journaled and
// shown; the rest is cut and its size said.
const MaxErrorBytes = 16 << 10

// MaxOutputBytesFromEnv reads RUNBOOK_MAX_OUTPUT_BYTES for
// Options.MaxOutputBytes: 0 when unset; an error naming the variable when
// it is not a number of bytes from 1 KiB to expr.MaxValueBytes.
func MaxOutputBytesFromEnv() (int, error) {
	v := os.Getenv("RUNBOOK_MAX_OUTPUT_BYTES")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1<<10 || n > expr.MaxValueBytes {
		return 0, fmt.Errorf("RUNBOOK_MAX_OUTPUT_BYTES=%q: want a number of bytes from 1024 to %d", v, expr.MaxValueBytes)
	}
	return n, nil
}

func (e *Engine) maxOutputBytes() int {
	if n := e.opts.MaxOutputBytes; n > 0 {
		return min(n, expr.MaxValueBytes)
	}
	return DefaultMaxOutputBytes
}

// checkOutputs holds an attempt's outputs to the cap and to the action's
// declared output schema, so that what validation type-checked holds at
// run time. Lists and maps a Go plugin returns as null (a nil slice) are
// read as empty. A failure is not retried: the action did its work and
// would answer the same way again.
func (e *Engine) checkOutputs(x execSpec, out map[string]any, n int) *StepError {
	fail := func(code, msg string) *StepError {
		return &StepError{Step: x.st.path, Rollback: x.rollback, Uses: x.uses, Class: journal.ClassEngine, Code: code,
			Attempts: n, Message: e.red.string(msg)}
	}
	limit := e.maxOutputBytes()
	if size, ok := expr.Size(out); !ok || size > limit {
		what := "more than " + byteSize(expr.MaxValueBytes)
		if ok {
			what = byteSize(size)
		}
		return fail("OutputTooLarge", fmt.Sprintf("%s returned %s of outputs, more than the cap of %s (largest: %s); they were not kept. "+
			"If such outputs are expected, raise the cap with RUNBOOK_MAX_OUTPUT_BYTES (at most %s)", x.uses, what, byteSize(limit), largest(out), byteSize(expr.MaxValueBytes)))
	}
	if x.spec == nil || x.spec.Outputs == nil {
		return nil
	}
	emptyNulls(x.spec.Outputs, out)
	if ps := schema.Validate(x.spec.Outputs, out, nil); len(ps) > 0 {
		msgs := make([]string, 0, min(len(ps), 5))
		for i, p := range ps {
			if i == 5 {
				msgs = append(msgs, fmt.Sprintf("and %d more", len(ps)-5))
				break
			}
			msgs = append(msgs, "outputs"+strings.ReplaceAll(p.Path, "/", ".")+": "+p.Message)
		}
		return fail("InvalidOutputs", fmt.Sprintf("%s returned outputs that do not match the schema it declares (a fault of the plugin): %s", x.uses, strings.Join(msgs, "; ")))
	}
	return nil
}

// emptyNulls replaces null values where s declares a list or a map with an
// empty one, in place.
func emptyNulls(s *schema.Schema, v any) {
	m, ok := v.(map[string]any)
	if !ok || s == nil {
		return
	}
	for k, val := range m {
		ps, ok := s.Property(k)
		if !ok || ps == nil {
			continue
		}
		switch {
		case val == nil && ps.Type == schema.Array:
			m[k] = []any{}
		case val == nil && ps.Type == schema.Object:
			m[k] = map[string]any{}
		case ps.Type == schema.Object:
			emptyNulls(ps, val)
		case ps.Type == schema.Array:
			if l, ok := val.([]any); ok {
				for _, it := range l {
					emptyNulls(ps.Items, it)
				}
			}
		}
	}
}

// largest names the biggest output and its size, for the message.
func largest(out map[string]any) string {
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, v := range out {
		n, ok := expr.Size(v)
		if !ok {
			n = expr.MaxValueBytes + 1
		}
		all = append(all, kv{k, n})
	}
	if len(all) == 0 {
		return "none"
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	return fmt.Sprintf("%q, %s", all[0].k, byteSize(all[0].n))
}

// capMessage cuts an error message longer than MaxErrorBytes, saying how
// much was cut (at a rune boundary).
func capMessage(msg string) string {
	if len(msg) <= MaxErrorBytes {
		return msg
	}
	cut := MaxErrorBytes
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + fmt.Sprintf(" … [cut: %s in all]", byteSize(len(msg)))
}

// byteSize writes n bytes for people: 812 B, 3.4 KiB, 1.2 MiB.
func byteSize(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
