package spec

import (
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/schema"
)

func TestCheckPermissions(t *testing.T) {
	params := &schema.Schema{Type: schema.Object, Closed: true, Properties: map[string]*schema.Schema{
		"cluster":  {Type: schema.String},
		"role_arn": {Type: schema.String},
		"m":        {Type: schema.Object, Additional: &schema.Schema{Type: schema.Object, Properties: map[string]*schema.Schema{"arn": {Type: schema.String}}}},
	}}
	ok := ActionSpec{Name: "a", Params: params, Permissions: []Permission{
		{Actions: []string{"ecs:UpdateService"}, Resources: []string{"arn:{partition}:ecs:*:{account}:service/${cluster}/*"}},
		{Actions: []string{"iam:PassRole"}, Resources: []string{"${role_arn}"}},
		{Actions: []string{"s3:GetObject"}, Resources: []string{"${m.*.arn}"}, When: "m", Role: "role_arn", AssumedBy: "batchoperations.s3.amazonaws.com"},
	}}
	if err := CheckPermissions(ok); err != nil {
		t.Fatal(err)
	}
	for want, p := range map[string]Permission{
		"no IAM actions":                  {},
		`"UpdateService" is not`:          {Actions: []string{"UpdateService"}},
		"${clusters} names no parameter":  {Actions: []string{"ecs:X"}, Resources: []string{"arn:aws:ecs:::${clusters}"}},
		"{region} is not":                 {Actions: []string{"ecs:X"}, Resources: []string{"arn:aws:ecs:{region}::x"}},
		"not an ARN template":             {Actions: []string{"ecs:X"}, Resources: []string{"cluster/${cluster}"}},
		`when "nope" names no parameter`:  {Actions: []string{"ecs:X"}, When: "nope"},
		"role and assumed_by go together": {Actions: []string{"ecs:X"}, Role: "role_arn"},
	} {
		err := CheckPermissions(ActionSpec{Name: "a", Params: params, Permissions: []Permission{p}})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "action a: permission 0") {
			t.Errorf("%+v: err %v, want %q", p, err, want)
		}
	}
}
