package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Permission is cloud access an action needs (today: AWS IAM), declared in
// its description so that `runbook permissions` can write the least policy a
// runbook's chosen paths need, and the simulation can check that every call
// an action makes is covered.
//
// Resources are ARN templates. `${name}` (or `${a.b}` inside an object,
// `${m.*.b}` for b of every entry of a map or list m) is replaced by the
// action's parameter: a list gives one resource per item; a
// value that is an ARN or a path, in a template that is more than the
// placeholder, gives its last element (a bucket ARN in
// "arn:{partition}:s3:::${buckets}" gives the bucket's name,
// "/hostedzone/Z1" gives "Z1"); a value known only at run time gives "*";
// a parameter not given (or empty) drops the template. `{partition}` and
// `{account}` are where the policy is for ("aws", an account id; "*" when
// not told). When no resource is left, or none is declared, the resource
// is "*": the IAM action has no resource type, or the parameters do not
// name it.
type Permission struct {
	// Actions are IAM actions, "rds:SwitchoverGlobalCluster".
	Actions []string `json:"actions"`
	// Resources are ARN templates (see above); empty: "*".
	Resources []string `json:"resources,omitempty"`
	// When names a parameter ("require_writer"): the permission is needed
	// only when it is set (present and not null, false, "" or empty).
	When string `json:"when,omitempty"`
	// Role names the parameter holding the ARN of a role the action hands to
	// an AWS service ("role_arn"): the permission is that role's, not the
	// caller's. AssumedBy is the service that assumes it
	// ("batchoperations.s3.amazonaws.com"), for the role's trust policy.
	Role      string `json:"role,omitempty"`
	AssumedBy string `json:"assumed_by,omitempty"`
}

var (
	iamActionRE   = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*]+$`)
	placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}|\{([^}]*)\}`)
	wholeParamRE  = regexp.MustCompile(`^\$\{[^}]*\}$`)
	paramPathRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|\*))*$`)
)

// Context placeholders of a resource template.
const (
	PlaceholderPartition = "partition"
	PlaceholderAccount   = "account"
)

// CheckPermissions reports what is wrong with an action's declared
// permissions: an IAM action not written "service:Action", a template
// placeholder that names no parameter or context, When or Role naming no
// parameter, a role without the service that assumes it.
func CheckPermissions(a ActionSpec) error {
	var errs []string
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("permission %d: %s", i, fmt.Sprintf(format, args...)))
	}
	for i, p := range a.Permissions {
		if len(p.Actions) == 0 {
			bad(i, "no IAM actions")
		}
		for _, act := range p.Actions {
			if !iamActionRE.MatchString(act) {
				bad(i, "IAM action %q is not service:Action", act)
			}
		}
		for _, r := range p.Resources {
			if err := checkTemplate(r, a.Params); err != nil {
				bad(i, "resource %q: %v", r, err)
			}
		}
		for _, ref := range []struct{ what, path string }{{"when", p.When}, {"role", p.Role}} {
			if ref.path != "" && ParamSchema(a.Params, ref.path) == nil {
				bad(i, "%s %q names no parameter", ref.what, ref.path)
			}
		}
		if (p.Role == "") != (p.AssumedBy == "") {
			bad(i, "role and assumed_by go together")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("action %s: %s", a.Name, strings.Join(errs, "; "))
	}
	return nil
}

func checkTemplate(t string, params *schema.Schema) error {
	if t == "*" {
		return nil
	}
	if !strings.HasPrefix(t, "arn:") && !wholeParamRE.MatchString(t) {
		return fmt.Errorf("not an ARN template (arn:...), a parameter holding ARNs (${name}) or *")
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(t, -1) {
		switch {
		case strings.HasPrefix(m[0], "$"):
			if !paramPathRE.MatchString(m[1]) || ParamSchema(params, m[1]) == nil {
				return fmt.Errorf("${%s} names no parameter", m[1])
			}
		case m[2] != PlaceholderPartition && m[2] != PlaceholderAccount:
			return fmt.Errorf("{%s} is not {%s} or {%s}", m[2], PlaceholderPartition, PlaceholderAccount)
		}
	}
	return nil
}

// ParamSchema is the schema of the parameter at a dotted path ("a.b";
// "m.*.c" is c of every entry of the map or list m), or nil.
func ParamSchema(s *schema.Schema, path string) *schema.Schema {
	for _, name := range strings.Split(path, ".") {
		switch {
		case s == nil:
			return nil
		case name == "*" && s.Items != nil:
			s = s.Items
		case name == "*":
			s = s.Additional
		default:
			s, _ = s.Property(name)
		}
	}
	return s
}

// ResourceTemplatePlaceholders returns the placeholders of a template: the
// parameter paths (${...}) and the context names ({...}).
func ResourceTemplatePlaceholders(t string) (params, context []string) {
	for _, m := range placeholderRE.FindAllStringSubmatch(t, -1) {
		if strings.HasPrefix(m[0], "$") {
			params = append(params, m[1])
		} else {
			context = append(context, m[2])
		}
	}
	return params, context
}

// ExpandResource fills a template: param(path) gives a parameter's value
// (known false when it is known only at run time; nil when not given), ctx
// the context placeholders ("" gives "*"). A parameter not given or empty
// gives no resource.
func ExpandResource(t string, param func(path string) (v any, known bool), ctx map[string]string) []string {
	out := []string{""}
	rest := t
	for {
		loc := placeholderRE.FindStringSubmatchIndex(rest)
		if loc == nil {
			break
		}
		lit := rest[:loc[0]]
		var vals []string
		if rest[loc[0]] == '$' {
			path := rest[loc[2]:loc[3]]
			whole := t == "${"+path+"}"
			v, known := param(path)
			if vals = resourceValues(v, known, whole); len(vals) == 0 {
				return nil
			}
		} else {
			v := ctx[rest[loc[4]:loc[5]]]
			if v == "" {
				v = "*"
			}
			vals = []string{v}
		}
		var next []string
		for _, o := range out {
			for _, v := range vals {
				next = append(next, o+lit+v)
			}
		}
		out, rest = next, rest[loc[1]:]
	}
	for i := range out {
		out[i] += rest
	}
	return out
}

func resourceValues(v any, known, whole bool) []string {
	if !known {
		return []string{"*"}
	}
	var items []any
	switch x := v.(type) {
	case nil:
	case []any:
		items = x
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	default:
		items = []any{v}
	}
	var out []string
	for _, it := range items {
		s, isStr := it.(string)
		if !isStr {
			s = fmt.Sprint(it)
		}
		if s == "" {
			continue
		}
		if !whole && (strings.HasPrefix(s, "arn:") || strings.Contains(s, "/")) {
			s = lastElement(s)
		}
		out = append(out, s)
	}
	return out
}

// lastElement is the last element of an ARN's resource part or of a path:
// "arn:aws:ecs:r:a:cluster/spacelift" gives "spacelift",
// "arn:aws:s3:::bucket" gives "bucket", "/hostedzone/Z1" gives "Z1".
func lastElement(s string) string {
	if strings.HasPrefix(s, "arn:") {
		if parts := strings.SplitN(s, ":", 6); len(parts) == 6 {
			s = parts[5]
		}
	}
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		return s[i+1:]
	}
	return s
}
