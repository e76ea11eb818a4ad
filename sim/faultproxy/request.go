package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Call is what the proxy knows about an AWS request before forwarding it.
type Call struct {
	// Region is where the call is served: the region of the SigV4 credential
	// scope, except for the global services whose control plane lives in one
	// region whatever a client signs for (see homeRegions).
	Region string
	// SignedRegion is the credential scope's region when it differs from Region.
	SignedRegion string
	Service      string // the SigV4 signing name: rds, ecs, autoscaling, s3, ...
	Operation    string // UpdateService, SwitchoverGlobalCluster, ... or "METHOD /path"
	Protocol     protocol
	// Body is the start of a rest-xml request's body (Route 53, CloudFront),
	// for rules that match on it (Rule.BodyContains).
	Body []byte
}

type protocol int

const (
	protoREST     protocol = iota // rest-xml (route53, cloudfront, s3control)
	protoQuery                    // Action=... (rds, autoscaling, sts, cloudwatch query)
	protoEC2                      // EC2's variant of query
	protoJSON                     // X-Amz-Target (ecs, cloudwatch json)
	protoRESTJSON                 // rest-json (iot)
	protoS3                       // S3's own error shape
	protoCBOR                     // Smithy RPC v2 CBOR (CloudWatch's SDK default)
)

// maxFormBody bounds how much of a form-encoded body is read to find Action=.
const maxFormBody = 1 << 20

// parseCall reads region, service and operation from r. It may read (and restores)
// a form-encoded body.
func parseCall(r *http.Request) Call {
	var c Call
	c.Region, c.Service = credentialScope(r)
	if home, ok := homeRegions[c.Service]; ok && c.Region != home && !otherPartition(c.Region) {
		c.SignedRegion, c.Region = c.Region, home
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		c.Protocol = protoJSON
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			c.Operation = t[i+1:]
		} else {
			c.Operation = t
		}
		return c
	}
	if m := rpcv2RE.FindStringSubmatch(r.URL.Path); m != nil && r.Header.Get("Smithy-Protocol") != "" {
		// Smithy RPC v2 (CloudWatch's CBOR default): /service/<name>/operation/<op>
		c.Operation, c.Protocol = m[1], protoCBOR
		return c
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		c.Operation, c.Protocol = a, protoQuery
	} else if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody))
		if err == nil {
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
			if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
				c.Operation, c.Protocol = v.Get("Action"), protoQuery
			}
		}
	}
	if c.Protocol == protoQuery {
		if c.Service == "ec2" {
			c.Protocol = protoEC2
		}
		return c
	}
	switch c.Service {
	case "s3":
		c.Protocol = protoS3
		if strings.HasPrefix(r.URL.Path, "/v20180820/") {
			// S3 Control signs as "s3".
			c.Service, c.Protocol = "s3control", protoREST
		}
	case "iot", "execute-api":
		c.Protocol = protoRESTJSON
	default:
		c.Protocol = protoREST
		if r.Body != nil && (c.Service == "route53" || c.Service == "cloudfront") {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody))
			if err == nil {
				r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
				if len(body) > 0 {
					c.Body = body
				}
			}
		}
	}
	c.Operation = restOperation(c.Service, r)
	return c
}

// homeRegions are the services of the aws partition whose API is served from one
// region only, whatever region a client signs for. AWS's clients sign Route 53,
// CloudFront and IAM for us-east-1 (their endpoints are global), but a client
// given a custom endpoint (this simulation, AWS_ENDPOINT_URL) signs for its own
// region, so the proxy does not trust the scope for them: a request to Route
// 53 from a client in eu-west-1 is still a call to Route 53's control plane in
// us-east-1, and black-holing us-east-1 must stop it. Sources: "AWS Fault
// Isolation Boundaries" (AWS whitepaper), "Global services": the control
// planes of Route 53, CloudFront and IAM are in us-east-1; Route 53
// Application Recovery Controller's configuration API is served from us-west-2
// only (Recovery Control Configuration API Reference: "you must specify the US
// West (Oregon) Region"), while its routing-control data plane is served by a
// cluster's endpoints in five regions and signed for each endpoint's region
// (not listed here). STS's global endpoint signs for us-east-1 already, and
// its regional endpoints are regional, so STS keeps its scope.
var homeRegions = map[string]string{
	"route53":                         "us-east-1",
	"cloudfront":                      "us-east-1",
	"iam":                             "us-east-1",
	"route53-recovery-control-config": "us-west-2",
}

// otherPartition: the China and GovCloud partitions have their own homes for
// the global services; their scope is kept as signed.
func otherPartition(region string) bool {
	return strings.HasPrefix(region, "cn-") || strings.HasPrefix(region, "us-gov-") || strings.HasPrefix(region, "us-iso")
}

var rpcv2RE = regexp.MustCompile(`^/service/[^/]+/operation/([^/]+)$`)

var credentialRE = regexp.MustCompile(`Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request`)

// credentialScope returns the region and service of a SigV4 request, from the
// Authorization header or a presigned URL's X-Amz-Credential.
func credentialScope(r *http.Request) (region, service string) {
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[3], m[4]
	}
	if cred := r.URL.Query().Get("X-Amz-Credential"); cred != "" {
		parts := strings.Split(cred, "/")
		if len(parts) == 5 {
			return parts[2], parts[3]
		}
	}
	return "", ""
}

type restRoute struct {
	method string
	path   *regexp.Regexp
	name   string
}

func route(method, pattern, name string) restRoute {
	return restRoute{method, regexp.MustCompile("^" + pattern + "$"), name}
}

// The REST operations of the services the DR runbooks use. Anything else is named
// "METHOD /path".
var restRoutes = map[string][]restRoute{
	"route53": {
		route("POST", `/2013-04-01/hostedzone/[^/]+/rrset/?`, "ChangeResourceRecordSets"),
		route("GET", `/2013-04-01/hostedzone/[^/]+/rrset/?`, "ListResourceRecordSets"),
		route("GET", `/2013-04-01/change/[^/]+`, "GetChange"),
		route("POST", `/2013-04-01/hostedzone/?`, "CreateHostedZone"),
		route("GET", `/2013-04-01/hostedzone/?`, "ListHostedZones"),
		route("GET", `/2013-04-01/hostedzonesbyname/?`, "ListHostedZonesByName"),
		route("GET", `/2013-04-01/hostedzone/[^/]+`, "GetHostedZone"),
		route("DELETE", `/2013-04-01/hostedzone/[^/]+`, "DeleteHostedZone"),
		route("POST", `/2013-04-01/healthcheck/?`, "CreateHealthCheck"),
		route("GET", `/2013-04-01/healthcheck/[^/]+/status`, "GetHealthCheckStatus"),
		route("GET", `/2013-04-01/healthcheck/[^/]+`, "GetHealthCheck"),
		route("GET", `/2013-04-01/testdnsanswer/?`, "TestDNSAnswer"),
	},
	"cloudfront": {
		route("GET", `/2020-05-31/distribution/[^/]+/config`, "GetDistributionConfig"),
		route("PUT", `/2020-05-31/distribution/[^/]+/config`, "UpdateDistribution"),
		route("POST", `/2020-05-31/distribution/[^/]+/invalidation`, "CreateInvalidation"),
		route("GET", `/2020-05-31/distribution/[^/]+`, "GetDistribution"),
		route("POST", `/2020-05-31/distribution/?`, "CreateDistribution"),
		route("GET", `/2020-05-31/distribution/?`, "ListDistributions"),
	},
	"s3control": {
		route("POST", `/v20180820/jobs/?`, "CreateJob"),
		route("GET", `/v20180820/jobs/?`, "ListJobs"),
		route("POST", `/v20180820/jobs/[^/]+/status`, "UpdateJobStatus"),
		route("GET", `/v20180820/jobs/[^/]+`, "DescribeJob"),
	},
	"iot": {
		route("GET", `/endpoint`, "DescribeEndpoint"),
	},
	"route53-recovery-control-config": {
		route("POST", `/cluster`, "CreateCluster"),
		route("GET", `/cluster`, "ListClusters"),
		route("GET", `/cluster/[^/]+`, "DescribeCluster"),
		route("DELETE", `/cluster/[^/]+`, "DeleteCluster"),
		route("POST", `/controlpanel`, "CreateControlPanel"),
		route("GET", `/controlpanels`, "ListControlPanels"),
		route("GET", `/controlpanel/[^/]+/routingcontrols`, "ListRoutingControls"),
		route("GET", `/controlpanel/[^/]+/safetyrules`, "ListSafetyRules"),
		route("GET", `/controlpanel/[^/]+`, "DescribeControlPanel"),
		route("POST", `/routingcontrol`, "CreateRoutingControl"),
		route("GET", `/routingcontrol/[^/]+/associatedRoute53HealthChecks`, "ListAssociatedRoute53HealthChecks"),
		route("GET", `/routingcontrol/[^/]+`, "DescribeRoutingControl"),
		route("POST", `/safetyrule`, "CreateSafetyRule"),
		route("GET", `/safetyrule/[^/]+`, "DescribeSafetyRule"),
	},
}

func restOperation(service string, r *http.Request) string {
	if service == "s3" {
		return s3Operation(r)
	}
	// Matched escaped: a path label can be an ARN with its slashes escaped
	// (Route 53 ARC's /cluster/{ClusterArn}).
	for _, rt := range restRoutes[service] {
		if rt.method == r.Method && rt.path.MatchString(r.URL.EscapedPath()) {
			return rt.name
		}
	}
	return r.Method + " " + r.URL.Path
}

// s3Operation names the path-style S3 operations a DR runbook and its seeding use.
func s3Operation(r *http.Request) string {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, hasKey := strings.Cut(path, "/")
	hasKey = hasKey && key != ""
	q := r.URL.Query()
	sub := ""
	for _, s := range []string{"versioning", "replication", "tagging", "policy", "encryption", "lifecycle", "acl", "location", "uploads", "uploadId"} {
		if q.Has(s) {
			sub = s
			break
		}
	}
	title := map[string]string{"versioning": "BucketVersioning", "replication": "BucketReplication", "tagging": "BucketTagging",
		"policy": "BucketPolicy", "encryption": "BucketEncryption", "lifecycle": "BucketLifecycleConfiguration", "acl": "BucketAcl", "location": "BucketLocation"}
	switch {
	case bucket == "":
		return "ListBuckets"
	case !hasKey && sub != "" && title[sub] != "":
		verb := map[string]string{"GET": "Get", "PUT": "Put", "DELETE": "Delete"}[r.Method]
		if verb == "" {
			break
		}
		return verb + title[sub]
	case !hasKey && r.Method == "PUT":
		return "CreateBucket"
	case !hasKey && r.Method == "DELETE":
		return "DeleteBucket"
	case !hasKey && r.Method == "HEAD":
		return "HeadBucket"
	case !hasKey && r.Method == "GET" && q.Has("versions"):
		return "ListObjectVersions"
	case !hasKey && r.Method == "GET" && q.Get("list-type") == "2":
		return "ListObjectsV2"
	case !hasKey && r.Method == "GET":
		return "ListObjects"
	case hasKey && r.Method == "PUT" && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	case hasKey && r.Method == "PUT" && q.Has("tagging"):
		return "PutObjectTagging"
	case hasKey && r.Method == "PUT":
		return "PutObject"
	case hasKey && r.Method == "GET":
		return "GetObject"
	case hasKey && r.Method == "HEAD":
		return "HeadObject"
	case hasKey && r.Method == "DELETE":
		return "DeleteObject"
	}
	return r.Method + " " + r.URL.Path
}
