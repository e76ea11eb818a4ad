package cloudflare

import (
	"context"
	"strings"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// CheckParams of cloudflare_record_check.
type CheckParams struct {
	Zone      string `json:"zone" required:"true" doc:"The zone: its name (myorg.com) or its 32-character id."`
	Name      string `json:"name" required:"true" doc:"Fully qualified record name (@ for the zone apex)."`
	Type      string `json:"type" enum:"CNAME,A,AAAA" doc:"Only records of this type; default: the name's CNAME, A and AAAA records."`
	MustExist bool   `json:"must_exist" default:"true" doc:"Refuse when the name has no such record."`
	DNSOnly   bool   `json:"dns_only" doc:"Refuse a proxied record (orange cloud): the name's clients must reach the target itself, e.g. the IoT broker domain, whose MQTT does not pass Cloudflare's HTTP proxy."`
	Reason    string `json:"reason" doc:"With dns_only: why the record must not be proxied, for the refusal (default: the IoT broker's)."`
	Conn
}

// CheckOutputs of cloudflare_record_check.
type CheckOutputs struct {
	Exists  bool     `json:"exists" doc:"Whether the name has a record of the type(s) checked."`
	Record  Record   `json:"record" doc:"The first such record (exists false if none)."`
	Records []Record `json:"records" doc:"Every such record."`
	Proxied bool     `json:"proxied" doc:"Whether any of them is proxied."`
}

// defaultDNSOnlyReason is why the IoT broker record must be DNS-only.
// Cloudflare's proxy forwards HTTP and HTTPS on a fixed set of ports only
// (Cloudflare docs, Fundamentals > Network ports); AWS IoT Core's MQTT is
// MQTT over TLS on 8883, or on 443 with ALPN (AWS IoT Core Developer Guide,
// "Protocols, port mappings, and authentication"), and the worker checks the
// broker's own certificate: through the proxy it would reach Cloudflare.
const defaultDNSOnlyReason = "workers speak MQTT to the IoT broker, which does not pass Cloudflare's HTTP proxy"

var checkTypes = []string{"CNAME", "A", "AAAA"}

// CheckAction returns the cloudflare_record_check action.
func CheckAction() plugin.Action {
	a := &actor{}
	return plugin.NewAction("cloudflare_record_check", a.check).
		Doc("Reads the CNAME/A/AAAA record(s) at a name in a Cloudflare zone and refuses, with the reason, what the runbook cannot work with: " +
			"no record (must_exist), or a proxied record where clients must reach the target itself (dns_only: the IoT broker domain, since MQTT does not pass Cloudflare's HTTP proxy). " +
			"Read-only: for pre-flight, so a run stops before anything changes.").
		ReadOnly().
		Plan(func(ctx context.Context, req plugin.PlanRequest[CheckParams]) (plugin.Plan, error) {
			what := "read Cloudflare record " + req.Params.Name
			if req.Params.DNSOnly {
				what += " and refuse it if proxied"
			}
			return plugin.Plan{Summary: what + " (read-only)"}, nil
		})
}

func (a *actor) check(ctx context.Context, req plugin.Request[CheckParams]) (CheckOutputs, error) {
	p := req.Params
	api, err := a.client(p.Conn, retryProgress(req.Progress))
	if err != nil {
		return CheckOutputs{}, err
	}
	z, name, err := api.nameInZone(ctx, p.Zone, p.Name)
	if err != nil {
		return CheckOutputs{}, err
	}
	all, err := api.recordsAt(ctx, z, name)
	if err != nil {
		return CheckOutputs{}, err
	}
	types := checkTypes
	if p.Type != "" {
		types = []string{p.Type}
	}
	out := CheckOutputs{Records: []Record{}, Record: Record{ZoneID: z.ID, Name: name, Type: typeOr(p.Type)}}
	for _, r := range all {
		for _, t := range types {
			if string(r.Type) == t {
				out.Records = append(out.Records, fromResponse(z.ID, r))
			}
		}
	}
	if len(out.Records) == 0 {
		if p.MustExist {
			return out, plugin.FatalCode("NoSuchRecord", "%s has no %s record in zone %s", name, strings.Join(types, "/"), z.Name)
		}
		return out, nil
	}
	out.Exists, out.Record = true, out.Records[0]
	var proxied []string
	for _, r := range out.Records {
		req.Progress("record: "+describe(r), "zone", z.Name, "name", name)
		if r.Proxied {
			out.Proxied = true
			proxied = append(proxied, describe(r))
		}
	}
	if p.DNSOnly && out.Proxied {
		reason := p.Reason
		if reason == "" {
			reason = defaultDNSOnlyReason
		}
		return out, plugin.FatalCode("ProxiedRecord", "%s in zone %s is proxied by Cloudflare (%s), but it must be DNS only: %s; "+
			"switch the record to DNS only (grey cloud) before running", name, z.Name, strings.Join(proxied, "; "), reason)
	}
	return out, nil
}
