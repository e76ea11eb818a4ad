package expr

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// Refs are the names an expression reads, for ordering checks and for
// partial evaluation during plan.
type Refs struct {
	// Steps are the step ids read through steps.<id>.
	Steps []string
	// Inputs are the input names read through inputs.<name>.
	Inputs []string
	// Outputs is true when the expression reads the current step's outputs.
	Outputs bool
	// Env lists the roots of the environment the expression reads
	// (inputs, steps, run, outputs), sorted.
	Env []string
	// InputPaths are the fields read below inputs through member chains
	// with constant keys (inputs.primary.aws_region, inputs.x["key"]), each
	// cut to the part the expression needs to exist. Their offsets are in
	// the source of the expression that reads them.
	InputPaths []InputPath
}

// InputPath is a field read below an input: inputs.<Input>.<Keys...>.
//
// Keys is what must exist for the expression to evaluate without reading a
// null: a chain stops at its first key that is not a constant (inputs.x[k]
// reads inputs.x); `a?.b` lets a be null or missing, so a is not required;
// the last key of a chain on the left of `??`, or compared with nil, may be
// missing (that is what the expression tests).
type InputPath struct {
	Input string
	Keys  []string
	// Offset is the byte offset of the chain (its `inputs`) in the source.
	Offset int
	// Whole is set when the chain, with every key required, is the whole
	// expression: the expression's value is the value at that path.
	Whole bool
}

// OnlyInputs reports whether the expression reads nothing but inputs (or
// nothing at all), so that it can be evaluated as soon as inputs are known.
func (r Refs) OnlyInputs() bool {
	for _, e := range r.Env {
		if e != "inputs" {
			return false
		}
	}
	return true
}

// Constant reports whether the expression reads nothing from its
// environment: its value is known at validation.
func (r Refs) Constant() bool { return len(r.Env) == 0 }

// Analysis is what an expression reads and where, found from its syntax
// alone: the language package judges each name against the runbook (is
// the step visible here, does the input exist) with messages that say
// more than the compiler can.
type Analysis struct {
	Refs Refs
	// Chains are the names the expression reads, in the order of a walk
	// of its syntax tree (operands before operators): every identifier
	// (a chain without keys) and every member chain with constant keys
	// that starts at an identifier, each prefix too (steps, steps.db,
	// steps.db.outputs, steps.db.outputs.writer).
	Chains []Chain
}

// Chain is a member chain with constant keys: Root.Keys[0].Keys[1]...
// (inputs.primary["aws_region"] is inputs.primary.aws_region).
type Chain struct {
	Root Name
	Keys []Name
	// Extended is set when a longer chain reads a constant key below this
	// one: steps.db.outputs is extended in steps.db.outputs.writer.
	Extended bool
}

// Name is an identifier or a key, with its byte offset in the source.
type Name struct {
	Name   string
	Offset int
}

// Analyze parses src and returns what it reads, without compiling it (a
// syntax error is returned as an *Error). Results are cached.
func Analyze(src string) (*Analysis, error) {
	a, _, err := analyzeTree(src, false)
	return a, err
}

// analyzeTree is Analyze; with take, it also returns a syntax tree of src
// for the compiler to check and change: the one the analysis was made
// from when no compile took it yet (so an expression is parsed once), or
// a new one.
func analyzeTree(src string, take bool) (*Analysis, *parser.Tree, error) {
	if r, ok := analysisCache.get(src); ok {
		if r.err != nil || !take {
			return r.a, nil, r.err
		}
		if tree, ok := treeCache.take(src); ok {
			return r.a, tree, nil
		}
		tree, err := parseTree(src)
		return r.a, tree, err
	}
	tree, err := parseTree(src)
	var a *Analysis
	if err == nil {
		a = analyze(tree.Node, src)
		if !take {
			treeCache.put(src, tree)
		}
	}
	analysisCache.put(src, analysisResult{a: a, err: err})
	return a, tree, err
}

// parseTree parses src, after checking its nesting, and bounds its size.
// expr-lang's parser would bound the size itself with the configuration
// the compiler uses; parsing without one lets a single parse serve the
// analysis and the compiler (a configuration changes the tree only where
// an environment name hides a built-in, and runbook's names do not).
func parseTree(src string) (*parser.Tree, error) {
	if err := checkDepth(src); err != nil {
		return nil, err
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, toError(err)
	}
	n := 0
	var over ast.Node
	ast.Find(tree.Node, func(node ast.Node) bool {
		if n++; n == MaxNodes+1 {
			over = node
		}
		return false
	})
	if over != nil {
		fe := &file.Error{Location: over.Location(), Message: fmt.Sprintf("the expression has more than %d nodes", MaxNodes)}
		return nil, toError(fe.Bind(tree.Source))
	}
	return tree, nil
}

func analyze(tree ast.Node, src string) *Analysis {
	offs := newByteOffsets(src)
	v := &refVisitor{offs: offs, steps: map[string]bool{}, inputs: map[string]bool{}, env: map[string]bool{},
		extended: map[ast.Node]bool{}}
	ast.Walk(&tree, v)
	a := &Analysis{Chains: v.chains}
	for i, n := range v.chainNodes {
		a.Chains[i].Extended = v.extended[n]
	}
	r := &a.Refs
	r.Steps, r.Inputs, r.Env = sortedSet(v.steps), sortedSet(v.inputs), sortedSet(v.env)
	r.Outputs = v.outputs
	r.InputPaths = inputPaths(tree, offs)
	return a
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// envRoots are the names an expression can read from its environment (see
// Env.typeMap).
var envRoots = map[string]bool{"inputs": true, "steps": true, "run": true, "outputs": true}

type refVisitor struct {
	offs          *byteOffsets
	steps, inputs map[string]bool
	env           map[string]bool
	outputs       bool
	chains        []Chain
	chainNodes    []ast.Node // parallel to chains
	extended      map[ast.Node]bool
}

func (v *refVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		root, keys := v.chain(n)
		if root == nil {
			return
		}
		if len(keys) > 1 {
			v.extended[n.Node] = true
		}
		v.chains = append(v.chains, Chain{Root: v.name(root.Value, root), Keys: keys})
		v.chainNodes = append(v.chainNodes, n)
		switch root.Value {
		case "steps":
			v.steps[keys[0].Name] = true
		case "inputs":
			v.inputs[keys[0].Name] = true
		}
	case *ast.IdentifierNode:
		if n.Value == "outputs" {
			v.outputs = true
		}
		if envRoots[n.Value] {
			v.env[n.Value] = true
		}
		v.chains = append(v.chains, Chain{Root: v.name(n.Value, n)})
		v.chainNodes = append(v.chainNodes, n)
	}
}

func (v *refVisitor) name(s string, n ast.Node) Name {
	return Name{Name: s, Offset: v.offs.at(n.Location().From)}
}

// chain flattens a member chain a.b.c into its identifier and the constant
// keys after it (nil if it does not start with an identifier or a key is
// not a constant).
func (v *refVisitor) chain(m *ast.MemberNode) (*ast.IdentifierNode, []Name) {
	var keys []Name
	var n ast.Node = m
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			s, ok := x.Property.(*ast.StringNode)
			if !ok {
				return nil, nil
			}
			keys = append(keys, v.name(s.Value, s))
			n = x.Node
			continue
		case *ast.IdentifierNode:
			for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
				keys[i], keys[j] = keys[j], keys[i]
			}
			return x, keys
		}
		return nil, nil
	}
}

// byteOffsets converts expr-lang's offsets, in characters, into byte
// offsets of the source. It walks on from the last offset converted, since
// offsets come mostly in increasing order: a long expression with many
// names costs one pass, not one per name.
type byteOffsets struct {
	src   string
	ascii bool
	r, b  int // the last conversion: r characters are b bytes
}

func newByteOffsets(src string) *byteOffsets {
	ascii := true
	for i := 0; i < len(src); i++ {
		if src[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	return &byteOffsets{src: src, ascii: ascii}
}

func (o *byteOffsets) at(runes int) int {
	if o.ascii {
		return min(max(runes, 0), len(o.src))
	}
	if runes < o.r {
		o.r, o.b = 0, 0
	}
	for o.r < runes && o.b < len(o.src) {
		_, size := utf8.DecodeRuneInString(o.src[o.b:])
		o.b += size
		o.r++
	}
	return o.b
}
