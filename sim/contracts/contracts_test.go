package contracts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/runbookhq/runbook/sim/contracts"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// record makes real SDK calls of every protocol the DR runbooks use through
// a recording proxy in front of the emulator, and returns the exchanges by
// operation.
func record(t *testing.T) map[string]faultproxy.Exchange {
	t.Helper()
	e := emulator.StartForTest(t, emulator.Options{TimingPreset: "instant"})
	p, err := faultproxy.Start(e.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.Record(true)
	ctx := context.Background()
	cfg := emulator.ConfigFor(p.URL, "eu-west-1")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rds.NewFromConfig(cfg).CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{GlobalClusterIdentifier: aws.String("contracts"), Engine: aws.String("aurora-postgresql")}))
	must(rds.NewFromConfig(cfg).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{}))
	if _, err := rds.NewFromConfig(cfg).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("no-such-cluster")}); err == nil {
		t.Fatal("DescribeGlobalClusters of an unknown cluster did not fail")
	}
	must(ecs.NewFromConfig(cfg).CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("contracts")}))
	must(ecs.NewFromConfig(cfg).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("contracts"), Services: []string{"none"}}))
	must(iot.NewFromConfig(cfg).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")}))
	r53 := route53.NewFromConfig(cfg)
	zone, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("contracts.example.com"), CallerReference: aws.String("contracts")})
	if err != nil {
		t.Fatal(err)
	}
	must(r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: zone.HostedZone.Id, ChangeBatch: &r53types.ChangeBatch{
		Comment: aws.String("contract test"),
		Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("a.contracts.example.com"), Type: r53types.RRTypeCname, TTL: aws.Int64(60),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("b.example.com")}},
		}}},
	}}))
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	must(s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("contracts-bucket"), CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuWest1}}))
	must(s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("contracts-bucket"), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}))
	must(s3c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("contracts-bucket")}))
	must(s3c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("contracts-bucket")}))
	q := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-10 * time.Minute)), EndTime: aws.Time(time.Now()),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("lag"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/RDS"), MetricName: aws.String("AuroraGlobalDBReplicationLag")}, Period: aws.Int32(60), Stat: aws.String("Maximum"),
		}}},
	}
	must(cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, q))
	must(cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801) }).GetMetricData(ctx, q))

	out := map[string]faultproxy.Exchange{}
	for _, x := range p.Exchanges() {
		key := x.Service + ":" + x.Operation
		if x.Service == "monitoring" {
			key += ":" + x.Protocol
		}
		if x.Status >= 300 {
			key += ":error"
		}
		out[key] = x
	}
	return out
}

func check(t *testing.T, xs ...faultproxy.Exchange) *contracts.Report {
	t.Helper()
	r, err := contracts.Check(context.Background(), xs, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRealExchangesMatchTheModels(t *testing.T) {
	xs := record(t)
	var all []faultproxy.Exchange
	for _, x := range xs {
		all = append(all, x)
	}
	r := check(t, all...)
	for _, f := range r.Findings {
		t.Errorf("finding: %s", f)
	}
	if r.RequestsChecked != len(all) || r.ResponsesChecked != len(all) {
		t.Errorf("checked %d requests and %d responses of %d exchanges", r.RequestsChecked, r.ResponsesChecked, len(all))
	}
	t.Logf("operations: %v", r.Operations())
	// The operation is the model's, whatever the protocol: REST ones by
	// method and URI template.
	want := map[string]bool{"rds:DescribeGlobalClusters": true, "rds:CreateGlobalCluster": true, "ecs:DescribeServices": true, "iot:DescribeEndpoint": true,
		"route53:ChangeResourceRecordSets": true, "s3:PutBucketVersioning": true, "s3:GetBucketVersioning": true, "cloudwatch:GetMetricData": true}
	for _, c := range r.Calls {
		delete(want, c.Service+":"+c.Operation)
		if c.Service == "route53" && c.Operation == "ChangeResourceRecordSets" {
			changes, _ := c.Params["ChangeBatch"].(map[string]any)["Changes"].([]any)
			if len(changes) != 1 || changes[0].(map[string]any)["Action"] != "UPSERT" || c.Params["HostedZoneId"] == "" {
				t.Errorf("decoded ChangeResourceRecordSets params: %v", c.Params)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("operations not identified: %v", want)
	}
}

// mutate returns x with old replaced by new in the request (or response) body,
// or the path, failing if old is not there.
func mutate(t *testing.T, x faultproxy.Exchange, where, old, new string) faultproxy.Exchange {
	t.Helper()
	field := map[string]*[]byte{"request": &x.RequestBody, "response": &x.ResponseBody}[where]
	if where == "path" {
		if !strings.Contains(x.Path, old) {
			t.Fatalf("path %s has no %q", x.Path, old)
		}
		x.Path = strings.Replace(x.Path, old, new, 1)
		return x
	}
	if !strings.Contains(string(*field), old) {
		t.Fatalf("%s body of %s has no %q:\n%s", where, x.Operation, old, *field)
	}
	b := []byte(strings.Replace(string(*field), old, new, 1))
	*field = b
	return x
}

func withStatus(x faultproxy.Exchange, status int) faultproxy.Exchange {
	x.Status = status
	return x
}

func TestWrongExchangesAreNamed(t *testing.T) {
	xs := record(t)
	create := xs["rds:CreateGlobalCluster"]
	rrset := xs["route53:ChangeResourceRecordSets"]
	badTarget := xs["ecs:DescribeServices"]
	badTarget.RequestHeaders = map[string]string{}
	for k, v := range xs["ecs:DescribeServices"].RequestHeaders {
		badTarget.RequestHeaders[k] = v
	}
	badTarget.RequestHeaders["x-amz-target"] = "AmazonEC2ContainerServiceV20141113.FrobnicateServices"
	frob := xs["iot:DescribeEndpoint"]
	frob.Query += "&frob=1"
	cases := []struct {
		name      string
		x         faultproxy.Exchange
		operation string
		direction string
		member    string
		rule      string
	}{
		{"missing required member", mutate(t, create, "request", "GlobalClusterIdentifier=contracts", "Engine2=x"),
			"rds:CreateGlobalCluster", "request", "GlobalClusterIdentifier", "required"},
		{"unknown member", mutate(t, create, "request", "GlobalClusterIdentifier=contracts", "GlobalClusterIdentifier=contracts&Frob=1"),
			"rds:CreateGlobalCluster", "request", "Frob", "unknown-member"},
		{"pattern mismatch", mutate(t, create, "request", "GlobalClusterIdentifier=contracts", "GlobalClusterIdentifier=1234"),
			"rds:CreateGlobalCluster", "request", "GlobalClusterIdentifier", "pattern"},
		{"too long", mutate(t, create, "request", "GlobalClusterIdentifier=contracts", "GlobalClusterIdentifier=c"+strings.Repeat("x", 255)),
			"rds:CreateGlobalCluster", "request", "GlobalClusterIdentifier", "max-length"},
		{"bad enum", mutate(t, rrset, "request", "<Action>UPSERT</Action>", "<Action>REPLACE</Action>"),
			"route53:ChangeResourceRecordSets", "request", "ChangeBatch.Changes[0].Action", "enum"},
		{"wrong type", mutate(t, rrset, "request", "<TTL>60</TTL>", "<TTL>sixty</TTL>"),
			"route53:ChangeResourceRecordSets", "request", "ChangeBatch.Changes[0].ResourceRecordSet.TTL", "type"},
		{"too long in the URI", mutate(t, rrset, "path", "/hostedzone/", "/hostedzone/"+strings.Repeat("Z", 40)),
			"route53:ChangeResourceRecordSets", "request", "HostedZoneId", "max-length"},
		{"wrong JSON type", mutate(t, xs["ecs:DescribeServices"], "request", `"cluster":"contracts"`, `"cluster":7`),
			"ecs:DescribeServices", "request", "cluster", "type"},
		{"an error with another status than the model's", withStatus(xs["rds:DescribeGlobalClusters:error"], 500),
			"rds:DescribeGlobalClusters", "response", "", "error-status"},
		{"an error code the operation does not model", mutate(t, xs["rds:DescribeGlobalClusters:error"], "response", "<Code>GlobalClusterNotFoundFault</Code>", "<Code>NoSuchGlobalThing</Code>"),
			"rds:DescribeGlobalClusters", "response", "", "error-code"},
		{"unknown query parameter", frob, "iot:DescribeEndpoint", "request", "frob", "unknown-member"},
		{"unknown operation", badTarget, "ecs:FrobnicateServices", "request", "", "unknown-operation"},
		{"response without a required member", mutate(t, rrset, "response", "<Status>INSYNC</Status>", ""),
			"route53:ChangeResourceRecordSets", "response", "ChangeInfo.Status", "required"},
		{"response with a bad enum", mutate(t, rrset, "response", "<Status>INSYNC</Status>", "<Status>DONE</Status>"),
			"route53:ChangeResourceRecordSets", "response", "ChangeInfo.Status", "enum"},
		{"response with a wrong type", mutate(t, xs["rds:CreateGlobalCluster"], "response", "<DeletionProtection>false</DeletionProtection>", "<DeletionProtection>no</DeletionProtection>"),
			"rds:CreateGlobalCluster", "response", "GlobalCluster.DeletionProtection", "type"},
		{"response with a bad enum (the answer botocore parses by hand)", mutate(t, xs["s3:GetBucketLocation"], "response", ">eu-west-1<", ">mars-1<"),
			"s3:GetBucketLocation", "response", "LocationConstraint", "enum"},
		{"response with a wrong JSON type", mutate(t, xs["iot:DescribeEndpoint"], "response", `"endpointAddress":`, `"endpointAddress":7,"x":`),
			"iot:DescribeEndpoint", "response", "endpointAddress", "type"},
	}
	// One run of the checker for every case (each exchange its own seq).
	var batch []faultproxy.Exchange
	for i := range cases {
		cases[i].x.Seq = 1000 + i
		batch = append(batch, cases[i].x)
	}
	r := check(t, batch...)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			found := false
			var got []contracts.Finding
			for _, f := range r.Findings {
				if f.Seq != 1000+i {
					continue
				}
				got = append(got, f)
				if f.Operation == c.operation && f.Direction == c.direction && f.Member == c.member && f.Rule == c.rule {
					found = true
					if !strings.Contains(f.String(), c.operation) || !strings.Contains(f.String(), "rule "+c.rule) || !strings.Contains(f.String(), "member ") {
						t.Errorf("finding reads %q", f)
					}
				}
			}
			if !found {
				t.Errorf("no finding (%s, %s, member %q, rule %s) in %v", c.operation, c.direction, c.member, c.rule, got)
			}
		})
	}
}

// The allowlist excuses a departure only as exactly as it names it: the
// operation, the member, the rule and, where given, the value.
func TestAllowlistExcusesOnlyWhatItNames(t *testing.T) {
	xs := record(t)
	// An answer with a FailoverState, as a switchover's would have.
	answer := func(op, status string, seq int) faultproxy.Exchange {
		x := mutate(t, xs["rds:CreateGlobalCluster"], "response", "</GlobalClusterArn>", "</GlobalClusterArn><FailoverState><Status>"+status+"</Status></FailoverState>")
		x.Seq = seq
		x.RequestBody = []byte(strings.Replace(string(x.RequestBody), "Action=CreateGlobalCluster", "Action="+op, 1))
		x.ResponseBody = []byte(strings.ReplaceAll(string(x.ResponseBody), "CreateGlobalCluster", op))
		return x
	}
	r, err := contracts.Check(context.Background(), []faultproxy.Exchange{
		answer("SwitchoverGlobalCluster", "switching-over", 1), // documented by AWS, missing from the models: excused
		answer("SwitchoverGlobalCluster", "switched-over", 2),  // another value: not
		answer("CreateGlobalCluster", "switching-over", 3),     // another operation: not
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, f := range r.Findings {
		if f.Direction == "response" && f.Member == "GlobalCluster.FailoverState.Status" && f.Rule == "enum" {
			got = append(got, f.Seq)
		}
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("enum findings of exchanges %v, want 2 and 3: %v", got, r.Findings)
	}
	if len(r.Allowlisted) != 1 || r.Allowlisted[0].Seq != 1 || r.Allowlisted[0].Reason == "" {
		t.Errorf("allowlisted %v, want exchange 1's, with its reason", r.Allowlisted)
	}
}
