package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"

	pb "github.com/runbookhq/runbook/sdk/plugin/proto/runbook/plugin/v1"
)

// Client is the host's side of one plugin connection, in Go types.
type Client struct {
	rpc pb.PluginClient
}

// NewClient wraps a gRPC connection to a plugin.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: pb.NewPluginClient(conn)}
}

// Describe asks the plugin what it offers.
func (c *Client) Describe(ctx context.Context) (*Description, error) {
	r, err := c.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return nil, err
	}
	return describeFromProto(r)
}

// Validate checks params statically; unknown lists JSON pointers of values
// known only at run time.
func (c *Client) Validate(ctx context.Context, action string, params map[string]any, unknown []string) ([]Diagnostic, error) {
	b, err := marshalObject(params)
	if err != nil {
		return nil, err
	}
	r, err := c.rpc.Validate(ctx, &pb.ValidateRequest{Action: action, Params: b, UnknownPaths: unknown})
	if err != nil {
		return nil, err
	}
	return diagsFromProto(r.Diagnostics), nil
}

// PlanCall is one Plan request.
type PlanCall struct {
	RunID, StepID, Action string
	Params                map[string]any
	Unknown               []string
}

// Plan asks what Apply would change.
func (c *Client) Plan(ctx context.Context, call PlanCall) (*Plan, error) {
	b, err := marshalObject(call.Params)
	if err != nil {
		return nil, err
	}
	r, err := c.rpc.Plan(ctx, &pb.PlanRequest{RunId: call.RunID, StepId: call.StepID, Action: call.Action, Params: b, UnknownPaths: call.Unknown})
	if err != nil {
		return nil, err
	}
	return planFromProto(r)
}

// ApplyCall is one Apply request.
type ApplyCall struct {
	RunID, StepID, Action string
	Attempt               int
	IdempotencyKey        string
	Rollback              bool
	Params                map[string]any
	Deadline              time.Time
}

// Apply runs an action, calling onProgress for each progress event. It
// returns the outputs, or an *Error the action reported, or another error
// for a transport failure (the plugin died, the connection broke).
func (c *Client) Apply(ctx context.Context, call ApplyCall, onProgress func(Progress)) (map[string]any, error) {
	b, err := marshalObject(call.Params)
	if err != nil {
		return nil, err
	}
	req := &pb.ApplyRequest{
		RunId: call.RunID, StepId: call.StepID, Action: call.Action, Attempt: uint32(call.Attempt),
		IdempotencyKey: call.IdempotencyKey, Params: b, Rollback: call.Rollback,
	}
	if !call.Deadline.IsZero() {
		req.DeadlineUnixMs = call.Deadline.UnixMilli()
	}
	stream, err := c.rpc.Apply(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil, fmt.Errorf("plugin closed the stream without a result")
		}
		if err != nil {
			return nil, err
		}
		switch e := ev.Event.(type) {
		case *pb.ApplyEvent_Progress:
			if onProgress != nil {
				onProgress(progressFromProto(e.Progress))
			}
		case *pb.ApplyEvent_Result:
			out := map[string]any{}
			if len(e.Result.Outputs) > 0 {
				dec := json.NewDecoder(bytes.NewReader(e.Result.Outputs))
				if err := dec.Decode(&out); err != nil {
					return nil, fmt.Errorf("plugin returned invalid outputs: %w", err)
				}
			}
			return out, nil
		case *pb.ApplyEvent_Error:
			return nil, &Error{Message: e.Error.Message, Code: e.Error.Code, Retryable: e.Error.Retryable, Diagnostics: diagsFromProto(e.Error.Diagnostics),
				RetryAfter: time.Duration(max(e.Error.RetryAfterMs, 0)) * time.Millisecond}
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
