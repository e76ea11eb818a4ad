package expr

import "github.com/expr-lang/expr/ast"

// inputPaths finds the member chains under `inputs` in an expression's
// tree (see InputPath), in source order.
func inputPaths(root ast.Node, offs *byteOffsets) []InputPath {
	var members []*ast.MemberNode
	// inner: member nodes that are the object of another member access,
	// part of a longer chain; tolerant: chains whose last key may be
	// missing (left of ??, compared with nil).
	inner := map[ast.Node]bool{}
	tolerant := map[ast.Node]bool{}
	ast.Find(root, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.MemberNode:
			members = append(members, x)
			inner[x.Node] = true
		case *ast.BinaryNode:
			switch x.Operator {
			case "??":
				markTolerant(tolerant, x.Left)
			case "==", "!=":
				if isNil(x.Right) {
					markTolerant(tolerant, x.Left)
				}
				if isNil(x.Left) {
					markTolerant(tolerant, x.Right)
				}
			}
		}
		return false
	})
	var out []InputPath
	for _, m := range members {
		if inner[m] {
			continue
		}
		p, ok := memberPath(m, tolerant[m])
		if !ok {
			continue
		}
		p.Offset = offs.at(p.Offset)
		p.Whole = p.Whole && unchain(root) == ast.Node(m)
		out = append(out, p)
	}
	return out
}

// memberPath flattens the chain ending at m; ok is false when it does not
// start at `inputs` or requires nothing below an input.
func memberPath(m *ast.MemberNode, tolerant bool) (InputPath, bool) {
	var chain []*ast.MemberNode
	var n ast.Node = m
	for {
		mm, ok := n.(*ast.MemberNode)
		if !ok {
			break
		}
		chain = append(chain, mm)
		n = mm.Node
	}
	id, ok := n.(*ast.IdentifierNode)
	if !ok || id.Value != "inputs" {
		return InputPath{}, false
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	var names []string // the input's name, then the keys
	complete := true
	for _, mm := range chain {
		if mm.Optional {
			// a?.b: a may be null or missing, so only what is before a is
			// required; what follows is skipped when a is null.
			names = names[:max(len(names)-1, 0)]
			complete = false
			break
		}
		s, ok := mm.Property.(*ast.StringNode)
		if !ok {
			complete = false // inputs.x[k]: inputs.x is read
			break
		}
		names = append(names, s.Value)
	}
	if tolerant && complete {
		names = names[:len(names)-1]
		complete = false
	}
	if len(names) < 2 {
		return InputPath{}, false
	}
	return InputPath{Input: names[0], Keys: names[1:], Offset: id.Location().From, Whole: complete}, true
}

// markTolerant marks the chains whose value is n's, where a null is
// handled: n itself, the branches of a conditional
// ((c ? inputs.a.x : inputs.b.x) ?? d), both sides of an inner ??.
func markTolerant(tolerant map[ast.Node]bool, n ast.Node) {
	switch x := unchain(n).(type) {
	case *ast.MemberNode:
		tolerant[x] = true
	case *ast.ConditionalNode:
		markTolerant(tolerant, x.Exp1)
		markTolerant(tolerant, x.Exp2)
	case *ast.BinaryNode:
		if x.Operator == "??" {
			markTolerant(tolerant, x.Left)
			markTolerant(tolerant, x.Right)
		}
	}
}

// unchain unwraps a?.b chains, which the parser wraps in a ChainNode.
func unchain(n ast.Node) ast.Node {
	if c, ok := n.(*ast.ChainNode); ok {
		return c.Node
	}
	return n
}

func isNil(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}
