package topology

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

const (
	dbEngine        = "aurora-postgresql"
	dbEngineVersion = "15.4" // Spacelift's DR needs Aurora PostgreSQL 13.7 or newer
	workerAMIFilter = "amzn2-ami-hvm-*-x86_64-gp2"
	serverPort      = 1983 // the server container's port behind the load balancer
)

// Seed builds the installation and returns its identifiers. Seed into a fresh
// account: names are fixed by Options.Name, so a second Seed collides with the first.
func Seed(ctx context.Context, opts Options) (*Topology, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &seeder{opts: opts}
	return s.run(ctx)
}

type seeder struct {
	opts     Options
	t        Topology
	changeID string // the initial DNS change, for the wait
}

func (s *seeder) cfg(region string) aws.Config { return s.opts.Config(region) }

func (s *seeder) run(ctx context.Context) (*Topology, error) {
	o := s.opts
	t := &s.t
	t.Name, t.Domain = o.Name, strings.TrimSuffix(o.Domain, ".")
	t.Primary = Region{Name: o.PrimaryRegion, DesiredCounts: map[string]int32{}}
	t.DR = Region{Name: o.DRRegion, DesiredCounts: map[string]int32{}}
	for _, svc := range Services {
		t.Primary.DesiredCounts[svc] = o.DesiredCounts[svc]
		t.DR.DesiredCounts[svc] = 0 // the DR installation runs with its services off
	}

	id, err := sts.NewFromConfig(s.cfg(o.PrimaryRegion)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("topology: sts GetCallerIdentity: %w", err)
	}
	t.AccountID = aws.ToString(id.Account)
	partition := "aws"
	if arn := aws.ToString(id.Arn); strings.HasPrefix(arn, "arn:") {
		partition = strings.SplitN(arn, ":", 3)[1]
	}
	t.ReplicationRoleARN = fmt.Sprintf("arn:%s:iam::%s:role/%s-s3-replication", partition, t.AccountID, o.Name)
	t.BatchRoleARN = fmt.Sprintf("arn:%s:iam::%s:role/%s-s3-batch-replication", partition, t.AccountID, o.Name)

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"iam", s.roles},
		{"kms", s.kmsKeys},
		{"aurora", s.aurora},
		{"regions", s.regions},
		{"s3 replication", s.replication},
		{"route53", s.dns},
		{"cloudfront", s.cloudfront},
	}
	for _, st := range steps {
		if err := st.fn(ctx); err != nil {
			return nil, fmt.Errorf("topology: %s: %w", st.name, err)
		}
	}
	if o.Wait {
		if err := s.waitSteady(ctx); err != nil {
			return nil, fmt.Errorf("topology: waiting for a steady installation: %w", err)
		}
	}
	out := *t
	return &out, nil
}

// roles creates the IAM roles S3 replication and S3 Batch Operations assume.
func (s *seeder) roles(ctx context.Context) error {
	c := iam.NewFromConfig(s.cfg(s.t.Primary.Name))
	for _, r := range []struct {
		arn     *string
		service string
	}{{&s.t.ReplicationRoleARN, "s3.amazonaws.com"}, {&s.t.BatchRoleARN, "batchoperations.s3.amazonaws.com"}} {
		name := (*r.arn)[strings.LastIndex(*r.arn, "/")+1:]
		out, err := c.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String(name),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"` + r.service + `"},"Action":"sts:AssumeRole"}]}`),
		})
		if err != nil {
			return fmt.Errorf("role %s: %w", name, err)
		}
		*r.arn = aws.ToString(out.Role.Arn)
	}
	return nil
}

func (s *seeder) kmsKeys(ctx context.Context) error {
	c := kms.NewFromConfig(s.cfg(s.t.Primary.Name))
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		MultiRegion: aws.Bool(true), KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt,
		Description: aws.String(s.opts.Name + " secrets and bucket encryption (multi-region)"),
		Tags:        []kmstypes.Tag{{TagKey: aws.String("app"), TagValue: aws.String(s.opts.Name)}},
	})
	if err != nil {
		return err
	}
	rep, err := c.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: key.KeyMetadata.KeyId, ReplicaRegion: aws.String(s.t.DR.Name)})
	if err != nil {
		return err
	}
	s.t.KMSPrimaryKeyARN = aws.ToString(key.KeyMetadata.Arn)
	s.t.KMSReplicaKeyARN = aws.ToString(rep.ReplicaKeyMetadata.Arn)
	s.t.Primary.KMSKeyARN, s.t.DR.KMSKeyARN = s.t.KMSPrimaryKeyARN, s.t.KMSReplicaKeyARN
	return nil
}

func (s *seeder) aurora(ctx context.Context) error {
	t := &s.t
	t.GlobalClusterID, t.DBEngine, t.DBEngineVersion = s.opts.Name, dbEngine, dbEngineVersion
	p := rds.NewFromConfig(s.cfg(t.Primary.Name))
	g, err := p.CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(t.GlobalClusterID), Engine: aws.String(dbEngine),
		EngineVersion: aws.String(dbEngineVersion), StorageEncrypted: aws.Bool(true), DeletionProtection: aws.Bool(false),
	})
	if err != nil {
		return err
	}
	t.GlobalClusterARN = aws.ToString(g.GlobalCluster.GlobalClusterArn)
	for _, r := range []*Region{&t.Primary, &t.DR} {
		c := rds.NewFromConfig(s.cfg(r.Name))
		in := &rds.CreateDBClusterInput{
			DBClusterIdentifier: aws.String(s.opts.Name + "-" + r.Name), Engine: aws.String(dbEngine),
			EngineVersion: aws.String(dbEngineVersion), GlobalClusterIdentifier: aws.String(t.GlobalClusterID),
			StorageEncrypted: aws.Bool(true), KmsKeyId: aws.String(r.KMSKeyARN),
		}
		if r == &t.Primary {
			// Only the writer has credentials; a secondary gets them by replication.
			in.MasterUsername, in.MasterUserPassword = aws.String("spacelift"), aws.String("sim-password-not-secret")
			in.DatabaseName = aws.String("spacelift")
		}
		cl, err := c.CreateDBCluster(ctx, in)
		switch {
		case err == nil:
			r.DBClusterID, r.DBClusterARN = aws.ToString(cl.DBCluster.DBClusterIdentifier), aws.ToString(cl.DBCluster.DBClusterArn)
		case retriedCreate(err):
			// The SDK retried a create whose first attempt the emulator had
			// carried out (its answer lost or a 5xx after the work): the
			// account is fresh, so what exists under our name is ours.
			d, derr := c.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: in.DBClusterIdentifier})
			if derr != nil || len(d.DBClusters) != 1 {
				return fmt.Errorf("%s cluster: %w", r.Name, err)
			}
			r.DBClusterID, r.DBClusterARN = aws.ToString(d.DBClusters[0].DBClusterIdentifier), aws.ToString(d.DBClusters[0].DBClusterArn)
		default:
			return fmt.Errorf("%s cluster: %w", r.Name, err)
		}
		instID := r.DBClusterID + "-1"
		inst, err := c.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{
			DBInstanceIdentifier: aws.String(instID), DBClusterIdentifier: aws.String(r.DBClusterID),
			Engine: aws.String(dbEngine), DBInstanceClass: aws.String("db.r6g.large"),
		})
		switch {
		case err == nil:
			r.DBInstanceID = aws.ToString(inst.DBInstance.DBInstanceIdentifier)
		case retriedCreate(err):
			d, derr := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(instID)})
			if derr != nil || len(d.DBInstances) != 1 {
				return fmt.Errorf("%s instance: %w", r.Name, err)
			}
			r.DBInstanceID = instID
		default:
			return fmt.Errorf("%s instance: %w", r.Name, err)
		}
	}
	return nil
}

// retriedCreate reports whether a create failed because the thing, or the
// automated snapshot the emulator takes when creating it (named by the minute),
// already exists: what an SDK retry of a create that was carried out gets.
func retriedCreate(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "DBClusterAlreadyExistsFault", "DBClusterSnapshotAlreadyExistsFault",
		"DBInstanceAlreadyExists", "DBSnapshotAlreadyExists":
		return true
	}
	return false
}

// regions seeds both regions' own resources concurrently.
func (s *seeder) regions(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*Region{&s.t.Primary, &s.t.DR} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.region(ctx, r); err != nil {
				errs[i] = fmt.Errorf("%s: %w", r.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *seeder) region(ctx context.Context, r *Region) error {
	cfg := s.cfg(r.Name)
	name := s.opts.Name

	// Network: the region's default subnets.
	e := ec2.NewFromConfig(cfg)
	subnets, err := e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return err
	}
	var subnetIDs []string
	for _, sn := range subnets.Subnets {
		subnetIDs = append(subnetIDs, aws.ToString(sn.SubnetId))
	}
	if len(subnetIDs) < 2 {
		return fmt.Errorf("need two default subnets, found %d", len(subnetIDs))
	}
	subnetIDs = subnetIDs[:2]
	sgs, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{"default"}},
		{Name: aws.String("vpc-id"), Values: []string{aws.ToString(subnets.Subnets[0].VpcId)}},
	}})
	if err != nil {
		return err
	}
	if len(sgs.SecurityGroups) == 0 {
		return fmt.Errorf("no default security group in %s", aws.ToString(subnets.Subnets[0].VpcId))
	}
	sgID := aws.ToString(sgs.SecurityGroups[0].GroupId)

	// Load balancer in front of the server service.
	lbIn := &elb.CreateLoadBalancerInput{
		Name: aws.String(name + "-server"), Subnets: subnetIDs, SecurityGroups: []string{sgID},
		Type: elbtypes.LoadBalancerTypeEnumApplication, Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing,
	}
	if s.opts.DualStack {
		lbIn.IpAddressType = elbtypes.IpAddressTypeDualstack
	}
	lb, err := elb.NewFromConfig(cfg).CreateLoadBalancer(ctx, lbIn)
	if err != nil {
		return fmt.Errorf("load balancer: %w", err)
	}
	r.LoadBalancerARN = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn)
	r.LoadBalancerDNS = aws.ToString(lb.LoadBalancers[0].DNSName)
	r.LoadBalancerZoneID = aws.ToString(lb.LoadBalancers[0].CanonicalHostedZoneId)
	n := 1
	if r.Name == s.t.DR.Name {
		n = 2
	}
	r.LoadBalancerIPv4, r.LoadBalancerIPv6 = fakeAddresses(n, s.opts.DualStack)

	// The server's target group (awsvpc tasks register by IP) and the listener that
	// forwards to it; ECS registers the server's tasks there.
	lbc := elb.NewFromConfig(cfg)
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String(name + "-server"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(serverPort),
		VpcId: subnets.Subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumIp,
		HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(30), HealthyThresholdCount: aws.Int32(5),
	})
	if err != nil {
		return fmt.Errorf("target group: %w", err)
	}
	r.TargetGroups = map[string]string{"server": aws.ToString(tg.TargetGroups[0].TargetGroupArn)}
	ln, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(r.LoadBalancerARN), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}},
	})
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	r.ListenerARN = aws.ToString(ln.Listeners[0].ListenerArn)

	// ECS: the cluster and its three services.
	c := ecs.NewFromConfig(cfg)
	cl, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("ecs cluster: %w", err)
	}
	r.ECSCluster = aws.ToString(cl.Cluster.ClusterName)
	for _, svc := range Services {
		container := ecstypes.ContainerDefinition{Name: aws.String(svc), Image: aws.String("public.ecr.aws/spacelift/" + svc + ":latest"), Essential: aws.Bool(true)}
		var lbs []ecstypes.LoadBalancer
		if arn, ok := r.TargetGroups[svc]; ok {
			container.PortMappings = []ecstypes.PortMapping{{ContainerPort: aws.Int32(serverPort)}}
			lbs = []ecstypes.LoadBalancer{{TargetGroupArn: aws.String(arn), ContainerName: aws.String(svc), ContainerPort: aws.Int32(serverPort)}}
		}
		td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(name + "-" + svc), NetworkMode: ecstypes.NetworkModeAwsvpc,
			RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, Cpu: aws.String("1024"), Memory: aws.String("2048"),
			ContainerDefinitions: []ecstypes.ContainerDefinition{container},
		})
		if err != nil {
			return fmt.Errorf("task definition %s: %w", svc, err)
		}
		_, err = c.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String(r.ECSCluster), ServiceName: aws.String(svc), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
			DesiredCount: aws.Int32(r.DesiredCounts[svc]), LaunchType: ecstypes.LaunchTypeFargate, LoadBalancers: lbs,
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: subnetIDs, SecurityGroups: []string{sgID}}},
		})
		if err != nil {
			return fmt.Errorf("service %s: %w", svc, err)
		}
		r.ECSServices = append(r.ECSServices, svc)
	}

	// IoT Core endpoint the workers connect to (through the broker domain).
	ep, err := iot.NewFromConfig(cfg).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
	if err != nil {
		return fmt.Errorf("iot endpoint: %w", err)
	}
	r.IoTEndpoint = aws.ToString(ep.EndpointAddress)

	// Workers: a launch template and an auto-scaling group.
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{workerAMIFilter}}}})
	if err != nil {
		return fmt.Errorf("worker AMI: %w", err)
	}
	if len(imgs.Images) == 0 {
		return fmt.Errorf("no image named %s", workerAMIFilter)
	}
	lt, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name + "-workers"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Medium},
	})
	if err != nil {
		return fmt.Errorf("launch template: %w", err)
	}
	r.LaunchTemplateID = aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	r.ASGName = name + "-workers"
	_, err = autoscaling.NewFromConfig(cfg).CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(r.ASGName),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, Version: aws.String("$Latest")},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(s.opts.Workers * 2), DesiredCapacity: aws.Int32(s.opts.Workers),
		VPCZoneIdentifier: aws.String(strings.Join(subnetIDs, ",")),
		Tags:              []astypes.Tag{{Key: aws.String("app"), Value: aws.String(name), PropagateAtLaunch: aws.Bool(true)}},
	})
	if err != nil {
		return fmt.Errorf("auto-scaling group: %w", err)
	}

	// Buckets: versioned, encrypted with the region's copy of the multi-region key.
	sc := s3Client(cfg)
	r.Buckets = map[string]Bucket{}
	for _, purpose := range BucketPurposes {
		b := bucketName(name, purpose, r.Name, s.t.AccountID)
		in := &s3.CreateBucketInput{Bucket: aws.String(b)}
		if r.Name != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r.Name)}
		}
		if _, err := sc.CreateBucket(ctx, in); err != nil {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
		if _, err := sc.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			return fmt.Errorf("bucket %s versioning: %w", b, err)
		}
		if _, err := sc.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(b),
			ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(r.KMSKeyARN)},
				BucketKeyEnabled:                   aws.Bool(true),
			}}}}); err != nil {
			return fmt.Errorf("bucket %s encryption: %w", b, err)
		}
		r.Buckets[purpose] = Bucket{Name: b, ARN: bucketARN(s.t.ReplicationRoleARN, b)}
	}
	return nil
}

// bucketARN builds arn:<partition>:s3:::<name>, the partition taken from another ARN.
func bucketARN(someARN, bucket string) string {
	partition := "aws"
	if parts := strings.SplitN(someARN, ":", 3); len(parts) == 3 {
		partition = parts[1]
	}
	return "arn:" + partition + ":s3:::" + bucket
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// replication sets each bucket to replicate new objects to its counterpart in the
// other region, both ways.
func (s *seeder) replication(ctx context.Context) error {
	for _, pair := range [][2]*Region{{&s.t.Primary, &s.t.DR}, {&s.t.DR, &s.t.Primary}} {
		from, to := pair[0], pair[1]
		sc := s3Client(s.cfg(from.Name))
		for _, purpose := range BucketPurposes {
			_, err := sc.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{
				Bucket: aws.String(from.Buckets[purpose].Name),
				ReplicationConfiguration: &s3types.ReplicationConfiguration{
					Role: aws.String(s.t.ReplicationRoleARN),
					Rules: []s3types.ReplicationRule{{
						ID: aws.String("replicate-to-" + to.Name), Priority: aws.Int32(1), Status: s3types.ReplicationRuleStatusEnabled,
						Filter:                  &s3types.ReplicationRuleFilter{Prefix: aws.String("")},
						DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusEnabled},
						SourceSelectionCriteria: &s3types.SourceSelectionCriteria{SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}},
						Destination: &s3types.Destination{
							Bucket:                  aws.String(to.Buckets[purpose].ARN),
							EncryptionConfiguration: &s3types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String(to.KMSKeyARN)},
						},
					}},
				},
			})
			if err != nil {
				return fmt.Errorf("%s: %w", from.Buckets[purpose].Name, err)
			}
		}
	}
	return nil
}

func (s *seeder) dns(ctx context.Context) error {
	t := &s.t
	c := route53.NewFromConfig(s.cfg(t.Primary.Name))
	zone, err := c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name: aws.String(t.Domain), CallerReference: aws.String(fmt.Sprintf("%s-%d", s.opts.Name, time.Now().UnixNano())),
		HostedZoneConfig: &r53types.HostedZoneConfig{Comment: aws.String(s.opts.Name + " self-hosted")},
	})
	if err != nil {
		return err
	}
	t.HostedZoneID = strings.TrimPrefix(aws.ToString(zone.HostedZone.Id), "/hostedzone/")
	t.ServerRecordName = t.Domain
	t.IoTRecordName = "worker-iot." + t.Domain
	t.IoTRecordTTL = 60
	t.DualStack = s.opts.DualStack
	serverTypes := []r53types.RRType{r53types.RRTypeA}
	if t.DualStack {
		serverTypes = append(serverTypes, r53types.RRTypeAaaa)
	}
	var changes []r53types.Change
	for _, typ := range serverTypes {
		changes = append(changes, r53types.Change{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String(t.ServerRecordName), Type: typ,
			AliasTarget: &r53types.AliasTarget{DNSName: aws.String(t.Primary.LoadBalancerDNS), HostedZoneId: aws.String(t.Primary.LoadBalancerZoneID), EvaluateTargetHealth: true},
		}})
	}
	changes = append(changes, r53types.Change{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{
		Name: aws.String(t.IoTRecordName), Type: r53types.RRTypeCname, TTL: aws.Int64(t.IoTRecordTTL),
		ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(t.Primary.IoTEndpoint)}},
	}})
	ch, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(t.HostedZoneID),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("initial: primary " + t.Primary.Name), Changes: changes},
	})
	if err != nil {
		return err
	}
	s.changeID = aws.ToString(ch.ChangeInfo.Id)
	return nil
}

func (s *seeder) cloudfront(ctx context.Context) error {
	t := &s.t
	t.DistributionOrigin = s.opts.Name + "-server"
	out, err := cloudfront.NewFromConfig(s.cfg("us-east-1")).CreateDistribution(ctx, &cloudfront.CreateDistributionInput{
		DistributionConfig: &cftypes.DistributionConfig{
			CallerReference: aws.String(fmt.Sprintf("%s-%d", s.opts.Name, time.Now().UnixNano())),
			Comment:         aws.String(s.opts.Name + " server (origin: the active region's load balancer)"),
			Enabled:         aws.Bool(true),
			Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{
				Id: aws.String(t.DistributionOrigin), DomainName: aws.String(t.Primary.LoadBalancerDNS),
				CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly},
			}}},
			DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{
				TargetOriginId: aws.String(t.DistributionOrigin), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
				MinTTL:          aws.Int64(0),
				ForwardedValues: &cftypes.ForwardedValues{QueryString: aws.Bool(true), Cookies: &cftypes.CookiePreference{Forward: cftypes.ItemSelectionAll}},
			},
		},
	})
	if err != nil {
		return err
	}
	t.DistributionID = aws.ToString(out.Distribution.Id)
	t.DistributionARN = aws.ToString(out.Distribution.ARN)
	t.DistributionDomain = aws.ToString(out.Distribution.DomainName)
	return nil
}

// waitSteady waits, with the SDK's waiters, for the primary's services, the DNS
// change and the distribution.
func (s *seeder) waitSteady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WaitTimeout)
	defer cancel()
	d, max := s.opts.PollInterval, 4*s.opts.PollInterval
	t := &s.t
	err := ecs.NewServicesStableWaiter(ecs.NewFromConfig(s.cfg(t.Primary.Name)), func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = d, max }).
		Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(t.Primary.ECSCluster), Services: t.Primary.ECSServices}, s.opts.WaitTimeout)
	if err != nil {
		return fmt.Errorf("primary services: %w", err)
	}
	if err := s.waitHealthy(ctx, t.Primary); err != nil {
		return fmt.Errorf("primary targets: %w", err)
	}
	err = route53.NewResourceRecordSetsChangedWaiter(route53.NewFromConfig(s.cfg(t.Primary.Name)), func(o *route53.ResourceRecordSetsChangedWaiterOptions) { o.MinDelay, o.MaxDelay = d, max }).
		Wait(ctx, &route53.GetChangeInput{Id: aws.String(s.changeID)}, s.opts.WaitTimeout)
	if err != nil {
		return fmt.Errorf("dns change: %w", err)
	}
	err = cloudfront.NewDistributionDeployedWaiter(cloudfront.NewFromConfig(s.cfg("us-east-1")), func(o *cloudfront.DistributionDeployedWaiterOptions) { o.MinDelay, o.MaxDelay = d, max }).
		Wait(ctx, &cloudfront.GetDistributionInput{Id: aws.String(t.DistributionID)}, s.opts.WaitTimeout)
	if err != nil {
		return fmt.Errorf("distribution: %w", err)
	}
	return nil
}

// waitHealthy waits until each of the region's target groups has as many healthy
// targets as its service's desired count: services stable is not yet serving.
func (s *seeder) waitHealthy(ctx context.Context, r Region) error {
	c := elb.NewFromConfig(s.cfg(r.Name))
	for svc, arn := range r.TargetGroups {
		want := int(r.DesiredCounts[svc])
		for {
			out, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			if err != nil {
				return err
			}
			healthy := 0
			for _, d := range out.TargetHealthDescriptions {
				if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					healthy++
				}
			}
			if healthy >= want {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("target group of %s: %d of %d healthy: %w", svc, healthy, want, ctx.Err())
			case <-time.After(s.opts.PollInterval):
			}
		}
	}
	return nil
}
