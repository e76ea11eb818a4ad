// Package iam turns the permissions actions declare (spec.Permission) into
// AWS IAM policy documents for given parameters: which permissions a call
// needs (When), on which resources (the ARN templates filled from the
// parameters), grouped into deterministic statements. `runbook permissions`
// and the simulation's permission tests use it.
package iam

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// Context is where a policy is for.
type Context struct {
	Partition string // default "aws"
	Account   string // "" gives "*"
}

func (c Context) placeholders() map[string]string {
	p := c.Partition
	if p == "" {
		p = "aws"
	}
	return map[string]string{spec.PlaceholderPartition: p, spec.PlaceholderAccount: c.Account}
}

// Params are an action call's parameters: Values as rendered (defaults
// applied), Unknown the JSON pointers of those known only at run time.
type Params struct {
	Values  map[string]any
	Unknown []string
}

func (p Params) unknown(pointer string) bool {
	for _, u := range p.Unknown {
		if u == pointer || strings.HasPrefix(pointer, u+"/") {
			return true
		}
	}
	return false
}

// Lookup returns the value at a dotted path ("a.b"; "m.*.c" collects c of
// every entry of m, in key order), and whether it is known before the run.
func (p Params) Lookup(path string) (any, bool) {
	vals, known := p.lookup(p.Values, strings.Split(path, "."), "")
	if !known {
		return nil, false
	}
	if !strings.Contains(path, "*") {
		if len(vals) == 0 {
			return nil, true
		}
		return vals[0], true
	}
	return vals, true
}

func (p Params) lookup(v any, path []string, pointer string) ([]any, bool) {
	if p.unknown(pointer) && pointer != "" {
		return nil, false
	}
	if len(path) == 0 {
		if v == nil {
			return nil, true
		}
		return []any{v}, true
	}
	name := path[0]
	switch x := v.(type) {
	case map[string]any:
		if name != "*" {
			if p.unknown(pointer + "/" + escape(name)) {
				return nil, false
			}
			e, ok := x[name]
			if !ok {
				return nil, true
			}
			return p.lookup(e, path[1:], pointer+"/"+escape(name))
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []any
		for _, k := range keys {
			vs, known := p.lookup(x[k], path[1:], pointer+"/"+escape(k))
			if !known {
				return nil, false
			}
			out = append(out, vs...)
		}
		return out, true
	case []any:
		if name != "*" {
			return nil, true
		}
		var out []any
		for i, e := range x {
			vs, known := p.lookup(e, path[1:], pointer+"/"+strconv.Itoa(i))
			if !known {
				return nil, false
			}
			out = append(out, vs...)
		}
		return out, true
	}
	return nil, true
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Needed reports whether a permission applies to a call: it has no When,
// or its When parameter is set (or known only at run time).
func Needed(perm spec.Permission, p Params) bool {
	if perm.When == "" {
		return true
	}
	v, known := p.Lookup(perm.When)
	if !known {
		return true
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// Resources are the permission's resources for a call: its templates
// filled, "*" when none is left (or none is declared).
func Resources(perm spec.Permission, p Params, c Context) []string {
	var out []string
	for _, t := range perm.Resources {
		out = append(out, spec.ExpandResource(t, p.Lookup, c.placeholders())...)
	}
	if len(out) == 0 {
		return []string{"*"}
	}
	return dedupe(out)
}

// Grant is one IAM action allowed on one resource.
type Grant struct {
	Action   string
	Resource string
}

// Grants are the (action, resource) pairs of a call's permissions for the
// caller (role "") or for the role a permission names.
func Grants(perms []spec.Permission, p Params, c Context) (caller []Grant, roles map[string][]Grant) {
	roles = map[string][]Grant{}
	for _, perm := range perms {
		if !Needed(perm, p) {
			continue
		}
		res := Resources(perm, p, c)
		var gs []Grant
		for _, a := range perm.Actions {
			for _, r := range res {
				gs = append(gs, Grant{a, r})
			}
		}
		if perm.Role == "" {
			caller = append(caller, gs...)
			continue
		}
		role := "*"
		if v, known := p.Lookup(perm.Role); known {
			if s, ok := v.(string); ok && s != "" {
				role = s
			}
		}
		roles[role+"\x00"+perm.AssumedBy] = append(roles[role+"\x00"+perm.AssumedBy], gs...)
	}
	return caller, roles
}

// Statement is one statement of a policy document.
type Statement struct {
	Sid       string            `json:"Sid,omitempty"`
	Effect    string            `json:"Effect"`
	Principal map[string]string `json:"Principal,omitempty"`
	Action    []string          `json:"Action"`
	Resource  []string          `json:"Resource,omitempty"`
}

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Build groups grants into a policy: one statement per set of resources,
// with every action allowed on exactly that set; actions, resources and
// statements sorted. An action allowed on "*" needs no narrower grant and
// keeps only "*".
func Build(grants []Grant) Policy {
	byAction := map[string]map[string]bool{}
	for _, g := range grants {
		if byAction[g.Action] == nil {
			byAction[g.Action] = map[string]bool{}
		}
		byAction[g.Action][g.Resource] = true
	}
	byResources := map[string][]string{}
	for a, rs := range byAction {
		var list []string
		if rs["*"] {
			list = []string{"*"}
		} else {
			for r := range rs {
				list = append(list, r)
			}
			sort.Strings(list)
		}
		key := strings.Join(list, "\n")
		byResources[key] = append(byResources[key], a)
	}
	keys := make([]string, 0, len(byResources))
	for k := range byResources {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ai, aj := byResources[keys[i]], byResources[keys[j]]
		sort.Strings(ai)
		sort.Strings(aj)
		return ai[0] < aj[0]
	})
	p := Policy{Version: Version, Statement: []Statement{}}
	for _, k := range keys {
		acts := byResources[k]
		sort.Strings(acts)
		p.Statement = append(p.Statement, Statement{Effect: "Allow", Action: acts, Resource: strings.Split(k, "\n")})
	}
	return p
}

// TrustPolicy lets service assume a role.
func TrustPolicy(service string) Policy {
	return Policy{Version: Version, Statement: []Statement{{
		Effect: "Allow", Principal: map[string]string{"Service": service}, Action: []string{"sts:AssumeRole"},
	}}}
}

// Covers reports whether a granted action (which may hold * and ?
// wildcards, as IAM allows) covers an IAM action; IAM matches action names
// without regard to case.
func Covers(granted, action string) bool {
	return wildcard(strings.ToLower(granted), strings.ToLower(action))
}

// CoversResource reports whether a granted resource (with * and ?) covers
// a resource ARN.
func CoversResource(granted, resource string) bool {
	return wildcard(granted, resource)
}

func wildcard(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ParamsFor are an action call's parameters with the defaults of its
// parameter schema filled in where a value is not given (a permission's
// When may name a parameter that defaults to true).
func ParamsFor(s *schema.Schema, values map[string]any, unknown []string) Params {
	v, _ := withDefaults(s, values).(map[string]any)
	if v == nil {
		v = map[string]any{}
	}
	return Params{Values: v, Unknown: unknown}
}

func withDefaults(s *schema.Schema, v any) any {
	m, ok := v.(map[string]any)
	if s == nil || s.Type != schema.Object || (!ok && v != nil) {
		return v
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		ps, _ := s.Property(k)
		out[k] = withDefaults(ps, e)
	}
	for _, k := range s.PropertyNames() {
		if _, given := out[k]; !given && s.Properties[k].Default != nil {
			out[k] = s.Properties[k].Default
		}
	}
	return out
}

// Call is one action call's permissions and parameters.
type Call struct {
	Permissions []spec.Permission
	Params      Params
}

// Role is a role an action hands to a service, with what it needs.
type Role struct {
	Role        string `json:"role"` // its ARN, "*" when known only at run time
	AssumedBy   string `json:"assumed_by"`
	TrustPolicy Policy `json:"trust_policy"`
	Policy      Policy `json:"policy"`
}

// Document is the caller's policy for a set of calls, and the policies of
// the roles they hand to services.
type Document struct {
	Policy Policy `json:"policy"`
	Roles  []Role `json:"roles,omitempty"`
}

// Collect builds the policies that cover calls.
func Collect(calls []Call, c Context) Document {
	var caller []Grant
	roles := map[string][]Grant{}
	for _, call := range calls {
		cg, rg := Grants(call.Permissions, call.Params, c)
		caller = append(caller, cg...)
		for k, gs := range rg {
			roles[k] = append(roles[k], gs...)
		}
	}
	d := Document{Policy: Build(caller)}
	keys := make([]string, 0, len(roles))
	for k := range roles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		role, svc, _ := strings.Cut(k, "\x00")
		d.Roles = append(d.Roles, Role{Role: role, AssumedBy: svc, TrustPolicy: TrustPolicy(svc), Policy: Build(roles[k])})
	}
	return d
}

// DocTable is a Markdown table of the permissions actions declare, for the
// plugins' documentation.
func DocTable(plugin string, actions []spec.ActionSpec) string {
	var b strings.Builder
	b.WriteString("| action | IAM actions | resources | when |\n|---|---|---|---|\n")
	code := func(ss []string) string {
		if len(ss) == 0 {
			return "`*`"
		}
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = "`" + s + "`"
		}
		return strings.Join(out, "<br>")
	}
	for _, a := range actions {
		for _, p := range a.Permissions {
			when := "always"
			if p.When != "" {
				when = "`" + p.When + "` set"
			}
			if p.Role != "" {
				when += "; for the role in `" + p.Role + "`, assumed by `" + p.AssumedBy + "`"
			}
			fmt.Fprintf(&b, "| `%s.%s` | %s | %s | %s |\n", plugin, a.Name, code(p.Actions), code(p.Resources), when)
		}
	}
	return b.String()
}
