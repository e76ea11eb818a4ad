package route53

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ReadParams of route53_record_read.
type ReadParams struct {
	awscommon.GlobalParams
	ZoneID      string `json:"zone_id" doc:"Hosted zone id (with or without /hostedzone/)."`
	ZoneName    string `json:"zone_name" doc:"Instead of zone_id: the zone's domain name."`
	PrivateZone *bool  `json:"private_zone" doc:"With zone_name, when a public and a private zone share the name: which one."`
	Name        string `json:"name" required:"true" doc:"Record name, e.g. spacelift.myorg.com."`
	Type        string `json:"type" required:"true" enum:"CNAME,A,AAAA,TXT" doc:"Record type."`
}

// ReadOutputs of route53_record_read.
type ReadOutputs struct {
	Record Record `json:"record" doc:"The record as it is (exists false if there is none)."`
	Target string `json:"target" doc:"Where the name points: the alias target's DNS name, or the values joined with a comma; empty if there is no record."`
	Read   string `json:"read" doc:"One sentence: the record, where and when it was read."`
}

// ReadPermissions are the IAM permissions of route53_record_read (Service
// Authorization Reference, "Actions, resources, and condition keys for
// Amazon Route 53").
var ReadPermissions = []plugin.Permission{
	{Actions: []string{"route53:ListHostedZonesByName"}, When: "zone_name"},
	{Actions: []string{"route53:GetHostedZone", "route53:ListResourceRecordSets"},
		Resources: []string{"arn:{partition}:route53:::hostedzone/${zone_id}"}},
}

// ReadAction returns route53_record_read: one record as it is, read-only
// (a run's final read of where its traffic points).
func ReadAction() plugin.Action {
	return plugin.NewAction("route53_record_read", func(ctx context.Context, req plugin.Request[ReadParams]) (ReadOutputs, error) {
		p := req.Params
		c, err := client(ctx, p.GlobalParams)
		if err != nil {
			return ReadOutputs{}, err
		}
		z, err := findZone(ctx, c, p.ZoneID, p.ZoneName, p.PrivateZone)
		if err != nil {
			return ReadOutputs{}, err
		}
		name := normalizeName(p.Name)
		rec, _, err := current(ctx, c, z, name, p.Type)
		if err != nil {
			return ReadOutputs{}, err
		}
		out := ReadOutputs{Record: rec}
		switch {
		case rec.Alias != nil:
			out.Target = normalizeName(rec.Alias.DNSName)
		default:
			out.Target = strings.Join(rec.Values, ",")
		}
		out.Read = fmt.Sprintf("%s in zone %s: %s (read at %s)", name, z.ID, describe(rec), time.Now().UTC().Format(time.RFC3339))
		return out, nil
	}).
		Doc("Reads one Route 53 record (name and type; a record of a type that cannot coexist with it, such as a CNAME where an A is asked for, is returned instead) and says where the name points: the alias target or the values. Read-only: a runbook's finally step reads with it where its traffic points after the run and any rollback.").
		Permissions(ReadPermissions...).
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[ReadParams]) []plugin.Diagnostic {
			return zoneDiags(false, req.Params.Name, req.Params.ZoneID, req.Params.ZoneName, req.Unknown)
		})
}
