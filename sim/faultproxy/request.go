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
	Region    string // from the SigV4 credential scope
	Service   string // the SigV4 signing name: rds, ecs, autoscaling, s3, ...
	Operation string // UpdateService, SwitchoverGlobalCluster, ... or "METHOD /path"
	Protocol  protocol
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
}

func restOperation(service string, r *http.Request) string {
	if service == "s3" {
		return s3Operation(r)
	}
	for _, rt := range restRoutes[service] {
		if rt.method == r.Method && rt.path.MatchString(r.URL.Path) {
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
