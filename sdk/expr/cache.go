package expr

import (
	"sort"
	"strings"
	"sync"

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

type cache[V any] struct {
	mu sync.Mutex
	m  map[string]V
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
	if c.m == nil || len(c.m) >= cacheCap {
		c.m = make(map[string]V)
	}
	c.m[key] = v
}

var (
	programCache cache[*Program]
	refsCache    cache[refsResult]
)

type refsResult struct {
	refs Refs
	err  error
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

func programKey(src string, env types.Map, want Kind) string {
	var b strings.Builder
	b.WriteByte(byte('0' + want))
	b.WriteString(src)
	b.WriteByte(0)
	typeKey(&b, env)
	return b.String()
}
