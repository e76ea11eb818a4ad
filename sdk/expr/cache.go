package expr

import (
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
)

// Validation compiles many identical expressions (the same
// ${{ inputs.region }} in every step) and reads each expression's
// references several times. Both results depend only on their inputs, so
// they are kept in small process-wide caches: a compiled Program is
// immutable and safe for concurrent use, and Refs are only read.

// cacheCap bounds each cache; a full cache is emptied rather than managed
// (an embedder validating endlessly many distinct expressions stays
// bounded).
const cacheCap = 8192

// treeCap bounds the syntax trees kept between an expression's analysis
// and its compilation: those are consecutive, and a tree can be large.
const treeCap = 64

type cache[V any] struct {
	mu sync.Mutex
	m  map[string]V
	// limit is the cache's capacity; 0 means cacheCap.
	limit int
}

func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *cache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.limit
	if limit == 0 {
		limit = cacheCap
	}
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[string]V)
	}
	c.m[key] = v
}

// take removes a key's value and returns it.
func (c *cache[V]) take(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	delete(c.m, key)
	return v, ok
}

var (
	programCache  cache[*Program]
	analysisCache cache[analysisResult]
	// treeCache holds the tree an analysis was made from until a compile
	// takes it (see analyzeTree).
	treeCache = cache[*parser.Tree]{limit: treeCap}
)

type analysisResult struct {
	a   *Analysis
	err error
}

// typeKey writes a canonical description of t: equal keys mean types that
// compile every expression alike (map keys sorted; expr-lang's own String
// does not sort them).
func typeKey(b *strings.Builder, t types.Type) {
	m, ok := t.(types.Map)
	if !ok {
		if t == nil {
			b.WriteString("<nil>")
			return
		}
		b.WriteString(t.String())
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("{")
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(":")
		typeKey(b, m[k])
		b.WriteString(",")
	}
	b.WriteString("}")
}

func programKey(src string, env Env, want Kind) string {
	var b strings.Builder
	b.WriteByte(byte('0' + want))
	b.WriteString(src)
	b.WriteByte(0)
	typesKey(&b, "inputs", env.Inputs)
	typesKey(&b, "steps", env.Steps)
	if env.Outputs != nil {
		b.WriteString("outputs:")
		typeKey(&b, env.Outputs.expr())
	}
	return b.String()
}

// typesKey writes a canonical description of a set of named types, keys
// sorted.
func typesKey(b *strings.Builder, name string, m map[string]Type) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString(name)
	b.WriteString("{")
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(":")
		typeKey(b, m[k].expr())
		b.WriteString(",")
	}
	b.WriteString("}")
}
