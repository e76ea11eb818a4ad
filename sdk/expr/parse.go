package expr

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

func parseTree(src string) (ast.Node, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, toError(err)
	}
	return tree.Node, nil
}
