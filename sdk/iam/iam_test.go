package iam

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/runbookhq/runbook/sdk/spec"
)

func TestResources(t *testing.T) {
	c := Context{Account: "123456789012"}
	p := Params{Values: map[string]any{
		"region":     "eu-west-1",
		"buckets":    []any{"arn:aws:s3:::states-eu", "modules-eu"},
		"cluster":    "arn:aws:ecs:eu-west-1:123456789012:cluster/spacelift",
		"zone_id":    "/hostedzone/Z1PA6795UKMFR9",
		"role_arn":   "arn:aws:iam::123456789012:role/batch",
		"manifests":  map[string]any{"b": map[string]any{"object_arn": "arn:aws:s3:::m/b.csv"}, "a": map[string]any{"object_arn": "arn:aws:s3:::m/a.csv"}},
		"later":      nil,
		"empty":      "",
		"restore":    map[string]any{"zone_id": "Z2"},
		"require_on": map[string]any{"global_cluster": "g"},
	}, Unknown: []string{"/later", "/restore"}}
	cases := []struct {
		templates []string
		want      []string
	}{
		{[]string{"arn:{partition}:s3:::${buckets}/*"}, []string{"arn:aws:s3:::states-eu/*", "arn:aws:s3:::modules-eu/*"}},
		{[]string{"arn:{partition}:ecs:${region}:{account}:service/${cluster}/*"}, []string{"arn:aws:ecs:eu-west-1:123456789012:service/spacelift/*"}},
		{[]string{"arn:{partition}:route53:::hostedzone/${zone_id}"}, []string{"arn:aws:route53:::hostedzone/Z1PA6795UKMFR9"}},
		{[]string{"${role_arn}"}, []string{"arn:aws:iam::123456789012:role/batch"}},
		{[]string{"${manifests.*.object_arn}"}, []string{"arn:aws:s3:::m/a.csv", "arn:aws:s3:::m/b.csv"}},
		// Known only at run time: any such resource.
		{[]string{"arn:{partition}:s3:::${later}"}, []string{"arn:aws:s3:::*"}},
		{[]string{"arn:{partition}:route53:::hostedzone/${restore.zone_id}"}, []string{"arn:aws:route53:::hostedzone/*"}},
		// Not given: the template is dropped; none left is "*".
		{[]string{"arn:{partition}:s3:::${empty}", "arn:{partition}:s3:::${missing_is_not_a_param}"}, []string{"*"}},
		{[]string{"arn:{partition}:s3:::${empty}", "arn:{partition}:s3:::${buckets}"}, []string{"arn:aws:s3:::states-eu", "arn:aws:s3:::modules-eu"}},
		{nil, []string{"*"}},
	}
	for _, tc := range cases {
		got := Resources(spec.Permission{Actions: []string{"s3:X"}, Resources: tc.templates}, p, c)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.templates, got, tc.want)
		}
	}
	if got := Resources(spec.Permission{Resources: []string{"arn:{partition}:rds::{account}:x"}}, p, Context{Partition: "aws-cn"}); got[0] != "arn:aws-cn:rds::*:x" {
		t.Errorf("no account: %v", got)
	}
}

func TestNeeded(t *testing.T) {
	p := Params{Values: map[string]any{"on": true, "off": false, "s": "x", "blank": "", "m": map[string]any{}}, Unknown: []string{"/later"}}
	for when, want := range map[string]bool{"": true, "on": true, "off": false, "s": true, "blank": false, "m": false, "absent": false, "later": true} {
		if got := Needed(spec.Permission{When: when}, p); got != want {
			t.Errorf("when %q: %v, want %v", when, got, want)
		}
	}
}

func TestBuildGroupsAndSorts(t *testing.T) {
	grants := []Grant{
		{"s3:GetBucketVersioning", "arn:aws:s3:::b"}, {"s3:GetBucketLocation", "arn:aws:s3:::a"},
		{"s3:GetBucketLocation", "arn:aws:s3:::b"}, {"s3:GetBucketVersioning", "arn:aws:s3:::a"},
		{"iot:DescribeEndpoint", "*"}, {"rds:DescribeGlobalClusters", "arn:aws:rds::1:global-cluster:g"},
		{"rds:DescribeGlobalClusters", "*"},
	}
	got, _ := json.Marshal(Build(grants))
	want := `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Action":["iot:DescribeEndpoint","rds:DescribeGlobalClusters"],"Resource":["*"]},` +
		`{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetBucketVersioning"],"Resource":["arn:aws:s3:::a","arn:aws:s3:::b"]}]}`
	if string(got) != want {
		t.Errorf("policy\n%s\nwant\n%s", got, want)
	}
	// The same grants in another order give the same document.
	for i, j := 0, len(grants)-1; i < j; i, j = i+1, j-1 {
		grants[i], grants[j] = grants[j], grants[i]
	}
	if again, _ := json.Marshal(Build(grants)); string(again) != want {
		t.Errorf("order changed the policy:\n%s", again)
	}
}

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		granted, action string
		want            bool
	}{
		{"s3:GetObject", "s3:GetObject", true}, {"s3:getobject", "s3:GetObject", true}, {"s3:Get*", "s3:GetObject", true},
		{"s3:Get*", "s3:PutObject", false}, {"ec2:*", "s3:GetObject", false}, {"*", "s3:GetObject", true},
	} {
		if got := Covers(c.granted, c.action); got != c.want {
			t.Errorf("Covers(%q, %q) = %v", c.granted, c.action, got)
		}
	}
	if !CoversResource("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x") || CoversResource("arn:aws:s3:::b", "arn:aws:s3:::b2") {
		t.Error("CoversResource")
	}
}

func TestGrantsOfARole(t *testing.T) {
	perms := []spec.Permission{
		{Actions: []string{"iam:PassRole"}, Resources: []string{"${role_arn}"}},
		{Actions: []string{"s3:InitiateReplication"}, Resources: []string{"arn:{partition}:s3:::${buckets}/*"}, Role: "role_arn", AssumedBy: "batchoperations.s3.amazonaws.com"},
		{Actions: []string{"s3:PutObject"}, Resources: []string{"arn:{partition}:s3:::${report_bucket}/*"}, When: "report_bucket", Role: "role_arn", AssumedBy: "batchoperations.s3.amazonaws.com"},
	}
	caller, roles := Grants(perms, Params{Values: map[string]any{"role_arn": "arn:aws:iam::1:role/b", "buckets": []any{"x"}}}, Context{})
	if !reflect.DeepEqual(caller, []Grant{{"iam:PassRole", "arn:aws:iam::1:role/b"}}) {
		t.Errorf("caller %v", caller)
	}
	if got := roles["arn:aws:iam::1:role/b\x00batchoperations.s3.amazonaws.com"]; !reflect.DeepEqual(got, []Grant{{"s3:InitiateReplication", "arn:aws:s3:::x/*"}}) {
		t.Errorf("roles %v", roles)
	}
}
