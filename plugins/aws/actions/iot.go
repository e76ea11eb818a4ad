package actions

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type iotEndpointParams struct {
	awscommon.Params
	EndpointType string `json:"endpoint_type" default:"iot:Data-ATS" enum:"iot:Data-ATS,iot:Data,iot:CredentialProvider,iot:Jobs" doc:"Which IoT Core endpoint to read; workers use iot:Data-ATS."`
}

type iotEndpointOutputs struct {
	Endpoint string `json:"endpoint" doc:"Host name of the region's IoT Core endpoint, e.g. abc123-ats.iot.eu-west-3.amazonaws.com."`
	Region   string `json:"region"`
}

func iotEndpoint() plugin.Action {
	return plugin.NewAction("iot_endpoint", func(ctx context.Context, req plugin.Request[iotEndpointParams]) (iotEndpointOutputs, error) {
		ep, err := describeIoTEndpoint(ctx, req.Params)
		if err != nil {
			return iotEndpointOutputs{}, err
		}
		req.Progress("endpoint read", "endpoint", ep, "region", req.Params.Region)
		return iotEndpointOutputs{Endpoint: ep, Region: req.Params.Region}, nil
	}).
		Doc("Reads a region's IoT Core endpoint (DescribeEndpoint, iot:Data-ATS by default): the host the worker broker domain must point at. Read-only.").
		Permissions(iotEndpointPermissions...).
		ReadOnly().
		Plan(func(ctx context.Context, req plugin.PlanRequest[iotEndpointParams]) (plugin.Plan, error) {
			return plugin.Plan{Summary: fmt.Sprintf("read the %s endpoint of IoT Core in %s (read-only)", req.Params.EndpointType, req.Params.Region)}, nil
		})
}

func describeIoTEndpoint(ctx context.Context, p iotEndpointParams) (string, error) {
	cfg, err := p.Conn().Config(ctx)
	if err != nil {
		return "", err
	}
	out, err := iot.NewFromConfig(cfg).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String(p.EndpointType)})
	if err != nil {
		return "", awscommon.Classify(err, "describing the %s endpoint of IoT Core in %s", p.EndpointType, p.Region)
	}
	if aws.ToString(out.EndpointAddress) == "" {
		return "", fmt.Errorf("IoT Core in %s returned no %s endpoint", p.Region, p.EndpointType)
	}
	return aws.ToString(out.EndpointAddress), nil
}
