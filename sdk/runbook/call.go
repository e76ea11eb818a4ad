package runbook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
)

// passThrough matches an expression that is a member chain of an input.
var passThrough = regexp.MustCompile(`^inputs\.([a-z][a-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$`)

// MaxCallDepth bounds how deep runbooks call runbooks.
const MaxCallDepth = 16

// program is what the runbooks of one program share while they are
// loaded: the chain of files being loaded (to refuse cycles), and the
// command each plugin name stands for.
type program struct {
	stack   []string
	plugins map[string]*PluginRef
	// commands are the plugins' commands as compared: a path resolved from
	// the file that declares it.
	commands map[string]string
}

// isCallRef reports whether a step's uses names a runbook file rather than
// an action: a path relative to the calling file.
func isCallRef(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
}

// callKeys are the keys a step that calls a runbook takes.
var callKeys = []string{"id", "name", "uses", "with", "if", "continue_on_error", "milestone"}

// call decodes a step that calls another runbook: the callee is loaded and
// validated as part of this program (its diagnostics carry its own file's
// positions); the step's outputs are the callee's outputs.
func (l *loader) call(sn *stepNode, uses entry, what string) {
	s := sn.step
	for k, e := range sn.f {
		if !contains(callKeys, k) {
			l.errorf(e.K, "%s calls a runbook: %s does not apply to a call (set it on the called runbook's steps); a call takes %s", what, k, strings.Join(callKeys, ", "))
		}
	}
	ref, _ := l.str(uses.V, what+": uses")
	s.Uses = ref
	sn.outputs = expr.Unknown
	if !l.noTemplate(uses.V, what+": uses") {
		return
	}
	file := filepath.Join(filepath.Dir(l.file), filepath.FromSlash(ref))
	abs, err := filepath.Abs(file)
	if err != nil {
		l.errorf(uses.V, "%s: uses %s: %v", what, ref, err)
		return
	}
	prog := l.opts.program
	for i, f := range prog.stack {
		if f == abs {
			chain := make([]string, 0, len(prog.stack)-i+1)
			for _, c := range prog.stack[i:] {
				chain = append(chain, filepath.Base(c))
			}
			l.errorf(uses.V, "%s: uses %s makes a cycle (%s -> %s): a runbook cannot call itself, directly or through others", what, ref, strings.Join(chain, " -> "), filepath.Base(abs))
			return
		}
	}
	if len(prog.stack) >= MaxCallDepth {
		l.errorf(uses.V, "%s: uses %s: runbooks call each other more than %d deep", what, ref, MaxCallDepth)
		return
	}
	src, err := readCapped(file, MaxSourceBytes)
	if err != nil {
		l.errorf(uses.V, "%s: uses %s: %v", what, ref, err)
		return
	}
	opts := l.opts
	opts.program = &program{stack: append(append([]string(nil), prog.stack...), abs), plugins: prog.plugins, commands: prog.commands}
	callee, diags := parseOne(file, src, opts)
	l.diags = append(l.diags, diags...)
	if callee == nil {
		if !diags.HasErrors() {
			l.errorf(uses.V, "%s: uses %s: the runbook could not be loaded", what, ref)
		}
		return
	}
	s.Call = &Call{Ref: ref, Runbook: callee}
	// The step's outputs are the callee's: their names are known (a typo
	// is an error), their values only at run time; a secret output stays
	// secret through the call.
	sn.outSchema = &schema.Schema{Type: schema.Object, Properties: map[string]*schema.Schema{}, Closed: true}
	out := map[string]expr.Type{}
	for _, o := range callee.Outputs {
		sn.outSchema.Properties[o.Name] = &schema.Schema{WriteOnly: o.Secret, Description: "output of " + ref}
		sn.outSchema.Order = append(sn.outSchema.Order, o.Name)
		out[o.Name] = expr.Unknown
	}
	sn.outputs = expr.ObjectType(out)
}

// inputSchema describes a runbook's inputs as the parameters of a step that
// calls it: `with` is checked against it like an action's parameters.
func inputSchema(rb *Runbook) *schema.Schema {
	sch := &schema.Schema{Type: schema.Object, Properties: map[string]*schema.Schema{}, Closed: true}
	for _, in := range rb.Inputs {
		p := &schema.Schema{Description: in.Description, Enum: in.Enum, WriteOnly: in.Secret}
		switch in.Type {
		case TypeString:
			p.Type = schema.String
		case TypeNumber:
			p.Type = schema.Number
		case TypeBool:
			p.Type = schema.Boolean
		case TypeList:
			p.Type = schema.Array
		case TypeMap:
			p.Type = schema.Object
		}
		if in.HasDefault {
			p.Default = in.Default
		}
		sch.Properties[in.Name] = p
		sch.Order = append(sch.Order, in.Name)
		if in.Required && !in.HasDefault {
			sch.Required = append(sch.Required, in.Name)
		}
	}
	return sch
}

// checkCall compiles the `with` of a step that calls a runbook against the
// callee's inputs, and carries the fields the callee reads below its map
// inputs over to the inputs of this runbook that the call passes to them
// as they are (from: ${{ inputs.primary }}), so that a config missing a
// field is refused before anything runs, naming where the callee reads it.
func (l *loader) checkCall(sn *stepNode) {
	s := sn.step
	callee := s.Call.Runbook
	s.With = l.with(sn.f, sn.f["uses"], inputSchema(callee), &exprCtx{what: "with", self: sn, uses: s.Uses}, true)
	// The inputs the call passes as they are: exactly ${{ inputs.x }} or
	// ${{ inputs.x.a.b }} (a member chain of this runbook's map input).
	bound := map[string]*InputPath{}
	for _, key := range s.With.Keys() {
		fv, _ := s.With.Field(key)
		t, ok := fv.Template()
		if !ok {
			continue
		}
		p, ok := t.Exact()
		if !ok {
			continue
		}
		if m := passThrough.FindStringSubmatch(strings.TrimSpace(p.Source())); m != nil {
			if in := l.rb.Input(m[1]); in != nil && in.Type == TypeMap {
				var keys []string
				if m[2] != "" {
					keys = strings.Split(strings.TrimPrefix(m[2], "."), ".")
				}
				bound[key] = &InputPath{Input: m[1], Keys: keys}
			}
		}
	}
	with := s.With
	bind := func(values map[string]any) (map[string]any, bool) {
		if with != nil && !with.Refs().OnlyInputs() {
			return nil, false
		}
		given := map[string]any{}
		if with != nil {
			v, err := with.Render(context.Background(), map[string]any{"inputs": values})
			m, ok := v.(map[string]any)
			if err != nil || !ok {
				return nil, false
			}
			given = m
		}
		out, err := callee.BindInputs(given)
		return out, err == nil
	}
	outer := guards(sn)
	for _, cip := range callee.InputPaths {
		b := bound[cip.Input]
		if b == nil {
			continue
		}
		ip := &InputPath{Input: b.Input, Keys: append(append([]string(nil), b.Keys...), cip.Keys...), Pos: cip.Pos, What: cip.What,
			Param: cip.Param, Uses: cip.Uses, Written: cip.Expr(), Guards: append([]Guard(nil), outer...)}
		for _, g := range cip.Guards {
			inner := g.Inputs
			ip.Guards = append(ip.Guards, Guard{If: g.If, Inputs: func(v map[string]any) (map[string]any, bool) {
				mine, ok := bind(v)
				if !ok || inner == nil {
					return mine, ok
				}
				return inner(mine)
			}})
		}
		l.rb.InputPaths = append(l.rb.InputPaths, ip)
	}
}

// BindInputs computes a runbook's input values from those a call gives:
// declared defaults for the others, zero values for inputs neither given
// nor defaulted; a missing required input, an unknown name, or a value of
// the wrong type or outside the enum is an error.
func (r *Runbook) BindInputs(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(r.Inputs))
	var problems []string
	for name := range given {
		if r.Input(name) == nil {
			problems = append(problems, fmt.Sprintf("%s declares no input %s", r.Name, name))
		}
	}
	for _, in := range r.Inputs {
		v, ok := given[in.Name]
		switch {
		case ok:
		case in.HasDefault:
			v = in.Default
		case in.Required:
			problems = append(problems, fmt.Sprintf("input %s of %s is required", in.Name, r.Name))
			continue
		default:
			v = zeroValue(in.Type)
		}
		if msg := checkInputType(in.Type, v); msg != "" {
			problems = append(problems, fmt.Sprintf("input %s of %s %s", in.Name, r.Name, redactIf(msg, in.Secret)))
			continue
		}
		if len(in.Enum) > 0 && !inEnum(in.Enum, v) {
			problems = append(problems, fmt.Sprintf("input %s of %s must be one of %s", in.Name, r.Name, enumString(in.Enum)))
			continue
		}
		out[in.Name] = v
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

func redactIf(msg string, secret bool) string {
	if secret {
		return "has the wrong type"
	}
	return msg
}

// programHash is the hash resume checks: the source's sha256, and for a
// runbook that calls others, the sha256 of the source and of every callee's
// hash, so that a change to any file of the program is a change.
func programHash(src []byte, rb *Runbook) string {
	sum := sha256.Sum256(src)
	h := hex.EncodeToString(sum[:])
	var calls []string
	rb.Walk(func(s *Step) {
		if s.Call != nil {
			calls = append(calls, s.Call.Ref+"\x00"+s.Call.Runbook.Hash)
		}
	})
	if len(calls) == 0 {
		return h
	}
	all := sha256.Sum256([]byte(h + "\x00" + strings.Join(calls, "\x00")))
	return hex.EncodeToString(all[:])
}

// samePlugin checks that a plugin name stands for one command in the whole
// program: the runbooks of a program share their plugin processes.
func (l *loader) samePlugin(ref *PluginRef, key *yaml.Node) bool {
	prog := l.opts.program
	cmd := ref.Command
	if strings.ContainsRune(cmd, '/') && !filepath.IsAbs(cmd) {
		// A path is relative to the file that declares it.
		cmd, _ = filepath.Abs(filepath.Join(filepath.Dir(l.file), cmd))
		if len(prog.stack) > 1 {
			ref.Command = cmd
		}
	}
	first := prog.plugins[ref.Name]
	if first == nil {
		prog.plugins[ref.Name], prog.commands[ref.Name] = ref, cmd
		return true
	}
	if prog.commands[ref.Name] != cmd || fmt.Sprint(first.Env) != fmt.Sprint(ref.Env) {
		l.errorf(key, "plugin %s is declared at %s with command %q (and env %v): the runbooks of one program share their plugins, so a name stands for one command and env", ref.Name, first.Pos, first.Command, first.Env)
		return false
	}
	return true
}
