package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type cloudfrontOriginParams struct {
	awscommon.GlobalParams
	DistributionID string        `json:"distribution_id" required:"true" doc:"CloudFront distribution id."`
	OriginID       string        `json:"origin_id" doc:"Id of the origin to change; default: the only origin, or the default cache behavior's target origin."`
	OriginDomain   string        `json:"origin_domain" required:"true" doc:"New domain name of the origin (e.g. the DR load balancer's DNS name)."`
	WaitDeployed   bool          `json:"wait_deployed" default:"true" doc:"Wait until the distribution's status is Deployed."`
	MaxAttempts    int           `json:"max_attempts" default:"5" min:"1" doc:"Read-modify-write attempts when another change races this one (PreconditionFailed on the ETag)."`
	PollInterval   time.Duration `json:"poll_interval" default:"2s" doc:"How often to read the distribution's status while waiting."`
}

type cloudfrontOriginOutputs struct {
	PreviousOriginDomain string        `json:"previous_origin_domain" doc:"The origin's domain before; pass it back as origin_domain to undo."`
	OriginDomain         string        `json:"origin_domain"`
	OriginID             string        `json:"origin_id"`
	Changed              bool          `json:"changed" doc:"False when the origin already had the domain."`
	Status               string        `json:"status" doc:"Distribution status at the end (Deployed when waited for)."`
	Duration             time.Duration `json:"duration"`
}

// pickOrigin finds the origin the step changes.
func pickOrigin(cfg *cftypes.DistributionConfig, distID, originID string) (*cftypes.Origin, error) {
	if cfg == nil || cfg.Origins == nil || len(cfg.Origins.Items) == 0 {
		return nil, plugin.FatalCode("NoOrigin", "distribution %s has no origins", distID)
	}
	items := cfg.Origins.Items
	if originID == "" {
		if len(items) == 1 {
			return &items[0], nil
		}
		if cfg.DefaultCacheBehavior != nil {
			originID = aws.ToString(cfg.DefaultCacheBehavior.TargetOriginId)
		}
	}
	var ids []string
	for i := range items {
		if aws.ToString(items[i].Id) == originID {
			return &items[i], nil
		}
		ids = append(ids, aws.ToString(items[i].Id))
	}
	return nil, plugin.FatalCode("NoSuchOrigin", "distribution %s has no origin %q (origins: %s)", distID, originID, strings.Join(ids, ", "))
}

func getDistributionConfig(ctx context.Context, c *cloudfront.Client, id string) (*cloudfront.GetDistributionConfigOutput, error) {
	out, err := c.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		if awscommon.IsCode(err, "NoSuchDistribution") {
			return nil, plugin.FatalCode("NoSuchDistribution", "CloudFront distribution %s not found", id)
		}
		return nil, awscommon.Classify(err, "reading the configuration of CloudFront distribution %s", id)
	}
	return out, nil
}

func cloudfrontOrigin() plugin.Action {
	return plugin.NewAction("cloudfront_origin", func(ctx context.Context, req plugin.Request[cloudfrontOriginParams]) (cloudfrontOriginOutputs, error) {
		start := time.Now()
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return cloudfrontOriginOutputs{}, err
		}
		c := cloudfront.NewFromConfig(cfg)
		out := cloudfrontOriginOutputs{OriginDomain: p.OriginDomain}
		for attempt := 1; ; attempt++ {
			dc, err := getDistributionConfig(ctx, c, p.DistributionID)
			if err != nil {
				return cloudfrontOriginOutputs{}, err
			}
			origin, err := pickOrigin(dc.DistributionConfig, p.DistributionID, p.OriginID)
			if err != nil {
				return cloudfrontOriginOutputs{}, err
			}
			out.OriginID = aws.ToString(origin.Id)
			out.PreviousOriginDomain = aws.ToString(origin.DomainName)
			if attempt == 1 {
				req.Progress("current origin: "+out.PreviousOriginDomain, "distribution", p.DistributionID, "origin_id", out.OriginID)
			}
			if strings.EqualFold(out.PreviousOriginDomain, p.OriginDomain) {
				req.Progress("origin already points at "+p.OriginDomain+": nothing to change", "distribution", p.DistributionID)
				break
			}
			origin.DomainName = aws.String(p.OriginDomain)
			_, err = c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{
				Id: aws.String(p.DistributionID), IfMatch: dc.ETag, DistributionConfig: dc.DistributionConfig,
			})
			if err == nil {
				out.Changed = true
				req.Progress("origin changed: "+out.PreviousOriginDomain+" -> "+p.OriginDomain, "distribution", p.DistributionID, "origin_id", out.OriginID)
				break
			}
			if awscommon.IsCode(err, "PreconditionFailed", "InvalidIfMatchVersion") && attempt < p.MaxAttempts {
				// Someone changed the distribution between our read and
				// write: read it again and re-apply on top of theirs.
				req.Progress("distribution changed concurrently; reading it again", "attempt", attempt)
				continue
			}
			return cloudfrontOriginOutputs{}, awscommon.Classify(err, "changing origin %s of CloudFront distribution %s to %s", out.OriginID, p.DistributionID, p.OriginDomain)
		}
		if !p.WaitDeployed {
			out.Duration = time.Since(start)
			return out, nil
		}
		var status string
		err = awscommon.Poll(ctx, p.PollInterval, "CloudFront distribution "+p.DistributionID+" to be Deployed", func(ctx context.Context) (bool, error) {
			d, err := c.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(p.DistributionID)})
			if err != nil {
				return false, awscommon.Classify(err, "reading CloudFront distribution %s", p.DistributionID)
			}
			s := aws.ToString(d.Distribution.Status)
			if s != status {
				status = s
				req.Progress("distribution "+s, "distribution", p.DistributionID)
			}
			return s == "Deployed", nil
		})
		if err != nil {
			return cloudfrontOriginOutputs{}, err
		}
		out.Status, out.Duration = status, time.Since(start)
		return out, nil
	}).
		Doc("Points a CloudFront distribution's origin at a new domain (the active region's load balancer): GetDistributionConfig, then UpdateDistribution with the ETag as IfMatch (re-reading and re-applying when a concurrent change makes it PreconditionFailed), then waits until the distribution is Deployed. Outputs the previous origin domain for a rollback. Idempotent: an origin already on the domain is left alone.").
		Permissions(cloudfrontOriginPermissions...).
		Idempotent().
		// CloudFront's control plane (UpdateDistribution) is served from us-east-1
		// only ("AWS Fault Isolation Boundaries", Global services).
		ControlPlane(plugin.ControlPlane{Service: "CloudFront", Region: "us-east-1"}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[cloudfrontOriginParams]) (plugin.Plan, error) {
			p := req.Params
			if req.Unknown("/distribution_id") || req.Unknown("/origin_id") || req.Unknown("/endpoint_url") {
				return plugin.Plan{Summary: "change the origin of a CloudFront distribution known only at run time", Changes: []plugin.Change{{Resource: "cloudfront distribution", Field: "origin domain", AfterUnknown: true}}}, nil
			}
			cfg, err := p.Conn().Config(ctx)
			if err != nil {
				return plugin.Plan{}, err
			}
			dc, err := getDistributionConfig(ctx, cloudfront.NewFromConfig(cfg), p.DistributionID)
			if err != nil {
				return plugin.Plan{}, err
			}
			origin, err := pickOrigin(dc.DistributionConfig, p.DistributionID, p.OriginID)
			if err != nil {
				return plugin.Plan{}, err
			}
			ch := plugin.Change{Resource: fmt.Sprintf("cloudfront distribution %s origin %s", p.DistributionID, aws.ToString(origin.Id)), Field: "domain_name", Before: aws.ToString(origin.DomainName), After: p.OriginDomain, Kind: plugin.ChangeUpdate}
			summary := fmt.Sprintf("origin %s of %s: %s -> %s", aws.ToString(origin.Id), p.DistributionID, aws.ToString(origin.DomainName), p.OriginDomain)
			switch {
			case req.Unknown("/origin_domain"):
				ch.After, ch.AfterUnknown = nil, true
				summary = fmt.Sprintf("origin %s of %s: %s -> (known at run time)", aws.ToString(origin.Id), p.DistributionID, aws.ToString(origin.DomainName))
			case strings.EqualFold(aws.ToString(origin.DomainName), p.OriginDomain):
				ch.Kind = plugin.ChangeNoop
				summary += " (no change)"
			}
			return plugin.Plan{Summary: summary, Changes: []plugin.Change{ch}}, nil
		})
}
