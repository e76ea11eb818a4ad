package spaceliftapi

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/runbookhq/runbook/sim/emulator"
)

// The instances of an emulated auto-scaling group run workers: each boots a
// worker that resolves the broker domain (read from the emulator's Route 53)
// at that moment, and an instance leaving the group takes its worker along.
func TestASGInstancesRunWorkers(t *testing.T) {
	ctx := context.Background()
	const region, domain = "eu-west-3", "worker-iot.example.com"
	emu := emulator.StartForTest(t, emulator.Options{Timing: emulator.Timing{emulator.ASGInstanceWarmup: 600}})
	r53 := route53.NewFromConfig(emu.Config("us-east-1"))
	zone, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("example.com"), CallerReference: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	setRecord := func(target string) {
		t.Helper()
		_, err := r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: zone.HostedZone.Id, ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{
			Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(domain), Type: r53types.RRTypeCname, TTL: aws.Int64(60),
				ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(target)}}}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	setRecord("primary-ats.iot.eu-west-1.amazonaws.com")

	e := ec2.NewFromConfig(emu.Config(region))
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn2-ami-hvm-*-x86_64-gp2"}}}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("no image: %v", err)
	}
	lt, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("w"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: imgs.Images[0].ImageId}})
	if err != nil {
		t.Fatal(err)
	}
	a := autoscaling.NewFromConfig(emu.Config(region))
	if _, err := a.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("workers"), MinSize: aws.Int32(0), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(2),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}, AvailabilityZones: []string{region + "a"}}); err != nil {
		t.Fatal(err)
	}

	s := startFake(t)
	s.SetBrokerDomain(domain, Route53Resolver{Client: r53})
	detach, err := s.AttachASG(ctx, emu.URL, "01POOL", region, "workers")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = detach() })
	before := s.Workers("01POOL")
	if len(before) != 2 || before[0].Broker != "primary-ats.iot.eu-west-1.amazonaws.com" || before[0].Metadata["asg_id"] != "workers" {
		t.Fatalf("workers at attach: %+v", before)
	}
	jwt := token(t, s)
	if got := served(t, s, jwt, "01POOL"); len(got) != 2 {
		t.Fatalf("served %v", got)
	}

	setRecord("dr-ats.iot.eu-west-3.amazonaws.com")
	if got := served(t, s, jwt, "01POOL"); len(got) != 0 {
		t.Fatalf("after the move, before any restart, the pool lists %v", got)
	}
	victim := before[0].Metadata["instance_id"]
	if _, err := a.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if err := emu.Advance(ctx, 601*time.Second); err != nil {
		t.Fatal(err)
	}
	ws := s.Workers("01POOL")
	if len(ws) != 2 {
		t.Fatalf("workers after the replacement: %+v", ws)
	}
	var moved int
	for _, w := range ws {
		if w.Metadata["instance_id"] == victim {
			t.Errorf("the terminated instance's worker is still registered: %+v", w)
		}
		if w.Broker == "dr-ats.iot.eu-west-3.amazonaws.com" {
			moved++
		}
	}
	if got := served(t, s, jwt, "01POOL"); moved != 1 || len(got) != 1 {
		t.Errorf("%d workers on the DR broker, %d served; want 1 (the replacement)", moved, len(got))
	}
}
