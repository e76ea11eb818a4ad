package contracts

import (
	"regexp"
	"strings"

	"github.com/runbookhq/runbook/sdk/iam"
	"github.com/runbookhq/runbook/sdk/spec"
)

// What IAM permission an AWS call needs, for the tests that check the
// permissions actions declare against the calls they make.

// Need is an IAM action a call needs, on a resource ("" when the call's
// parameters name none that can be told).
type Need struct{ Action, Resource string }

// Declares reports whether a permission of the caller (not of a role the
// action hands on) allows the need: the IAM action matches, and a resource
// template, with every parameter any value, matches the resource (a
// template of the wrong ARN format does not).
func Declares(perms []spec.Permission, n Need) bool {
	for _, p := range perms {
		if p.Role != "" {
			continue
		}
		granted := false
		for _, act := range p.Actions {
			granted = granted || iam.Covers(act, n.Action)
		}
		if !granted {
			continue
		}
		if n.Resource == "" || len(p.Resources) == 0 {
			return true
		}
		for _, t := range p.Resources {
			if templateMatches(t, n.Resource) {
				return true
			}
		}
	}
	return false
}

// templateMatches reports whether a resource template, with its
// parameters given any values, can produce a pattern that covers the
// resource: a parameter stands for one name (no "/" or ":"), unless it is
// the whole template (an ARN parameter); IAM's own * and ? keep their
// meaning; {account} is any account.
func templateMatches(t, resource string) bool {
	const anyName = "\x00"
	patterns := spec.ExpandResource(t, func(string) (any, bool) { return anyName, true }, map[string]string{"partition": "aws"})
	for _, p := range patterns {
		var re strings.Builder
		re.WriteString("^")
		for _, r := range p {
			switch r {
			case 0:
				if p == anyName {
					re.WriteString(".+")
				} else {
					re.WriteString("[^/:]+")
				}
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		if regexp.MustCompile(re.String()).MatchString(resource) {
			return true
		}
	}
	return false
}

// IAMActionOf is the IAM action that authorizes an API operation, where it
// is not "<service prefix>:<operation>" (Service Authorization Reference;
// for S3, "Required permissions for Amazon S3 API operations" in the
// Amazon S3 API Reference). "" means no permission is needed.
var IAMActionOf = map[string]string{
	"s3:GetBucketReplication": "s3:GetReplicationConfiguration",
	"s3:PutBucketReplication": "s3:PutReplicationConfiguration",
	"s3:HeadBucket":           "s3:ListBucket",
	"s3:ListObjectsV2":        "s3:ListBucket",
	"s3:ListObjects":          "s3:ListBucket",
	"s3:ListObjectVersions":   "s3:ListBucketVersions",
	"s3:HeadObject":           "s3:GetObject",
	"s3:GetBucketEncryption":  "s3:GetEncryptionConfiguration",
	"s3:PutBucketEncryption":  "s3:PutEncryptionConfiguration",
	// AWS STS API Reference, GetCallerIdentity: "No permissions are
	// required to perform this operation."
	"sts:GetCallerIdentity": "",
}

// IAMPrefix is the IAM service prefix of each botocore service the
// plugins call.
var IAMPrefix = map[string]string{
	"rds": "rds", "ecs": "ecs", "autoscaling": "autoscaling", "iot": "iot", "cloudwatch": "cloudwatch",
	"route53": "route53", "cloudfront": "cloudfront", "s3": "s3", "s3control": "s3", "sts": "sts",
	"ec2": "ec2", "kms": "kms", "iam": "iam",
	// Load balancer target health, Application Recovery Controller routing
	// controls (their data plane and control plane have prefixes of their own).
	"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing",
	"route53-recovery-cluster": "route53-recovery-cluster", "route53-recovery-control-config": "route53-recovery-control-config",
}

// Needs are the IAM actions (and the resources, where the call's
// parameters name them) a call needs; false when the service is not one
// IAMPrefix knows.
func Needs(c Call, account string) ([]Need, bool) {
	key := c.Service + ":" + c.Operation
	action, special := IAMActionOf[key]
	if !special {
		prefix, ok := IAMPrefix[c.Service]
		if !ok {
			return nil, false
		}
		action = prefix + ":" + c.Operation
	}
	if action == "" {
		return nil, true
	}
	str := func(k string) string { s, _ := c.Params[k].(string); return s }
	var ns []Need
	add := func(act, res string) { ns = append(ns, Need{act, res}) }
	switch c.Service {
	case "rds":
		if g := str("GlobalClusterIdentifier"); g != "" {
			add(action, "arn:aws:rds::"+account+":global-cluster:"+g)
		}
		for _, k := range []string{"TargetDbClusterIdentifier", "DBClusterIdentifier"} {
			if id := str(k); strings.HasPrefix(id, "arn:") {
				add(action, id)
			} else if id != "" {
				add(action, "arn:aws:rds:"+c.Region+":"+account+":cluster:"+id)
			}
		}
	case "ecs":
		cluster := lastPart(str("cluster"))
		if cluster == "" {
			cluster = "default"
		}
		names := []string{str("service")}
		if l, ok := c.Params["services"].([]any); ok {
			names = nil
			for _, s := range l {
				n, _ := s.(string)
				names = append(names, n)
			}
		}
		for _, n := range names {
			if n != "" {
				add(action, "arn:aws:ecs:"+c.Region+":"+account+":service/"+cluster+"/"+lastPart(n))
			}
		}
	case "autoscaling":
		if g := str("AutoScalingGroupName"); g != "" && !strings.HasPrefix(c.Operation, "Describe") {
			add(action, "arn:aws:autoscaling:"+c.Region+":"+account+":autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/"+g)
		}
	case "s3":
		// A version's object is authorized by the *Version action.
		if str("VersionId") != "" {
			switch action {
			case "s3:GetObject":
				action = "s3:GetObjectVersion"
			case "s3:DeleteObject":
				action = "s3:DeleteObjectVersion"
			}
		}
		if b, k := str("Bucket"), str("Key"); b != "" && k != "" {
			add(action, "arn:aws:s3:::"+b+"/"+k)
		} else if b != "" {
			add(action, "arn:aws:s3:::"+b)
		}
	case "s3control":
		if id := str("JobId"); id != "" {
			add(action, "arn:aws:s3:"+c.Region+":"+account+":job/"+id)
		}
		if role := str("RoleArn"); role != "" {
			// S3 Batch Operations: "the same entity that creates the job
			// must also have the iam:PassRole permission" (Amazon S3 User
			// Guide, Granting permissions for Batch Operations).
			add("iam:PassRole", role)
		}
	case "route53":
		id := lastPart(str("Id"))
		if h := str("HostedZoneId"); h != "" {
			id = lastPart(h)
		}
		switch {
		case c.Operation == "GetChange":
			add(action, "arn:aws:route53:::change/"+id)
		case id != "":
			add(action, "arn:aws:route53:::hostedzone/"+id)
		}
	case "cloudfront":
		if id := str("Id"); id != "" {
			add(action, "arn:aws:cloudfront::"+account+":distribution/"+id)
		}
	}
	for _, n := range ns {
		if n.Action == action {
			return ns, true
		}
	}
	return append([]Need{{action, ""}}, ns...), true
}

func lastPart(s string) string {
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		return s[i+1:]
	}
	return s
}
