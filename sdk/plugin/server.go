package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/runbookhq/runbook/sdk/plugin/proto/runbook/plugin/v1"
)

func (s *Server) action(name string) (Action, error) {
	a, ok := s.actions[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no action %q", s.info.Name, name)
	}
	return a, nil
}

// Describe implements the service.
func (s *Server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return describeToProto(s.Description())
}

// Validate implements the service.
func (s *Server) Validate(_ context.Context, req *pb.ValidateRequest) (resp *pb.ValidateResponse, err error) {
	a, err := s.action(req.Action)
	if err != nil {
		return nil, err
	}
	defer recoverInto(&err, s.info.Name, req.Action)
	return &pb.ValidateResponse{Diagnostics: diagsToProto(a.runValidate(req.Params, req.UnknownPaths))}, nil
}

// Plan implements the service.
func (s *Server) Plan(ctx context.Context, req *pb.PlanRequest) (resp *pb.PlanResponse, err error) {
	a, err := s.action(req.Action)
	if err != nil {
		return nil, err
	}
	defer recoverInto(&err, s.info.Name, req.Action)
	plan, err := a.runPlan(withAction(ctx, s.info.Name, req.Action), planCall{
		runID: req.RunId, stepID: req.StepId, params: req.Params, unknown: req.UnknownPaths,
		log: s.log.With("action", req.Action, "step", req.StepId),
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && len(e.Diagnostics) > 0 {
			return &pb.PlanResponse{Diagnostics: diagsToProto(e.Diagnostics)}, nil
		}
		return nil, status.Errorf(codes.Unknown, "%v", err)
	}
	return planToProto(plan)
}

// Apply implements the service: progress events, then one result or error.
func (s *Server) Apply(req *pb.ApplyRequest, stream pb.Plugin_ApplyServer) error {
	a, err := s.action(req.Action)
	if err != nil {
		return err
	}
	ctx := withAction(stream.Context(), s.info.Name, req.Action)
	if req.DeadlineUnixMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(req.DeadlineUnixMs))
		defer cancel()
	}
	// Progress events are sent from the action's goroutine; gRPC streams
	// allow one sender at a time, so sends go through this channel.
	events := make(chan *pb.ApplyEvent, 64)
	done := make(chan struct{})
	var outputs []byte
	var applyErr error
	go func() {
		defer close(done)
		defer recoverInto(&applyErr, s.info.Name, req.Action)
		outputs, applyErr = a.runApply(ctx, applyCall{
			runID: req.RunId, stepID: req.StepId, key: req.IdempotencyKey,
			attempt: int(req.Attempt), rollback: req.Rollback, params: req.Params,
			log: s.log.With("action", req.Action, "step", req.StepId, "attempt", req.Attempt),
			progress: func(p Progress) {
				ev, err := progressToProto(p)
				if err != nil {
					return
				}
				select {
				case events <- ev:
				case <-ctx.Done():
				}
			},
		})
	}()
	for {
		select {
		case ev := <-events:
			if err := stream.Send(ev); err != nil {
				return err
			}
			continue
		case <-done:
		}
		break
	}
	// Drain progress sent just before the action returned.
	for {
		select {
		case ev := <-events:
			if err := stream.Send(ev); err != nil {
				return err
			}
			continue
		default:
		}
		break
	}
	if applyErr != nil {
		return stream.Send(&pb.ApplyEvent{Event: &pb.ApplyEvent_Error{Error: errorToProto(ctx, applyErr)}})
	}
	return stream.Send(&pb.ApplyEvent{Event: &pb.ApplyEvent_Result{Result: &pb.Result{Outputs: outputs}}})
}

func recoverInto(err *error, plugin, action string) {
	if r := recover(); r != nil {
		*err = &Error{Code: "PluginPanic", Message: fmt.Sprintf("plugin %s panicked in action %s: %v\n%s", plugin, action, r, debug.Stack())}
	}
}

func errorToProto(ctx context.Context, err error) *pb.Error {
	var e *Error
	if errors.As(err, &e) {
		msg := e.Message
		if msg == "" {
			msg = e.Error()
		}
		return &pb.Error{Message: msg, Retryable: e.Retryable, Code: e.Code, Diagnostics: diagsToProto(e.Diagnostics), RetryAfterMs: e.RetryAfter.Milliseconds()}
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return &pb.Error{Message: err.Error(), Retryable: true, Code: "Timeout"}
	}
	if errors.Is(err, context.Canceled) {
		return &pb.Error{Message: err.Error(), Code: "Canceled"}
	}
	return &pb.Error{Message: err.Error(), Code: codeOf(err)}
}

func describeToProto(d *Description) (*pb.DescribeResponse, error) {
	resp := &pb.DescribeResponse{Name: d.Name, Version: d.Version, ProtocolVersion: uint32(d.ProtocolVersion)}
	for _, a := range d.Actions {
		ps, err := json.Marshal(a.Params)
		if err != nil {
			return nil, err
		}
		os, err := json.Marshal(a.Outputs)
		if err != nil {
			return nil, err
		}
		as := &pb.ActionSchema{
			Name: a.Name, Doc: a.Doc, ParamsSchema: ps, OutputsSchema: os,
			Idempotent: a.Idempotent, SupportsPlan: a.SupportsPlan, ReadOnly: a.ReadOnly,
		}
		for _, cp := range a.ControlPlanes {
			as.ControlPlanes = append(as.ControlPlanes, &pb.ControlPlane{Service: cp.Service, Region: cp.Region})
		}
		for _, p := range a.Permissions {
			as.Permissions = append(as.Permissions, &pb.Permission{Actions: p.Actions, Resources: p.Resources, When: p.When, Role: p.Role, AssumedBy: p.AssumedBy})
		}
		resp.Actions = append(resp.Actions, as)
	}
	return resp, nil
}

func describeFromProto(r *pb.DescribeResponse) (*Description, error) {
	d := &Description{Name: r.Name, Version: r.Version, ProtocolVersion: int(r.ProtocolVersion)}
	for _, a := range r.Actions {
		spec := ActionSpec{Name: a.Name, Doc: a.Doc, Idempotent: a.Idempotent, SupportsPlan: a.SupportsPlan, ReadOnly: a.ReadOnly}
		for _, cp := range a.ControlPlanes {
			spec.ControlPlanes = append(spec.ControlPlanes, ControlPlane{Service: cp.GetService(), Region: cp.GetRegion()})
		}
		for _, p := range a.Permissions {
			spec.Permissions = append(spec.Permissions, Permission{Actions: p.Actions, Resources: p.Resources, When: p.When, Role: p.Role, AssumedBy: p.AssumedBy})
		}
		if len(a.ParamsSchema) > 0 {
			if err := json.Unmarshal(a.ParamsSchema, &spec.Params); err != nil {
				return nil, fmt.Errorf("action %s: params schema: %w", a.Name, err)
			}
		}
		if len(a.OutputsSchema) > 0 {
			if err := json.Unmarshal(a.OutputsSchema, &spec.Outputs); err != nil {
				return nil, fmt.Errorf("action %s: outputs schema: %w", a.Name, err)
			}
		}
		d.Actions = append(d.Actions, spec)
	}
	return d, nil
}

func diagsToProto(ds []Diagnostic) []*pb.Diagnostic {
	out := make([]*pb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := pb.Severity_SEVERITY_ERROR
		if d.Severity == SeverityWarning {
			sev = pb.Severity_SEVERITY_WARNING
		}
		out = append(out, &pb.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.Path})
	}
	return out
}

func diagsFromProto(ds []*pb.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		sev := SeverityError
		if d.Severity == pb.Severity_SEVERITY_WARNING {
			sev = SeverityWarning
		}
		out = append(out, Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.Path})
	}
	return out
}

func planToProto(p Plan) (*pb.PlanResponse, error) {
	resp := &pb.PlanResponse{Summary: p.Summary, Diagnostics: diagsToProto(p.Diagnostics)}
	for _, c := range p.Changes {
		before, err := json.Marshal(c.Before)
		if err != nil {
			return nil, err
		}
		after, err := json.Marshal(c.After)
		if err != nil {
			return nil, err
		}
		kind := c.Kind
		if kind == "" {
			kind = ChangeUpdate
		}
		resp.Changes = append(resp.Changes, &pb.Change{
			Resource: c.Resource, Field: c.Field, Before: before, After: after,
			AfterUnknown: c.AfterUnknown, Kind: kind,
		})
	}
	return resp, nil
}

func planFromProto(r *pb.PlanResponse) (*Plan, error) {
	p := &Plan{Summary: r.Summary, Diagnostics: diagsFromProto(r.Diagnostics)}
	for _, c := range r.Changes {
		ch := Change{Resource: c.Resource, Field: c.Field, AfterUnknown: c.AfterUnknown, Kind: c.Kind}
		if len(c.Before) > 0 {
			if err := json.Unmarshal(c.Before, &ch.Before); err != nil {
				return nil, err
			}
		}
		if len(c.After) > 0 {
			if err := json.Unmarshal(c.After, &ch.After); err != nil {
				return nil, err
			}
		}
		p.Changes = append(p.Changes, ch)
	}
	return p, nil
}

func progressToProto(p Progress) (*pb.ApplyEvent, error) {
	var fields []byte
	if len(p.Fields) > 0 {
		var err error
		if fields, err = json.Marshal(p.Fields); err != nil {
			return nil, err
		}
	}
	return &pb.ApplyEvent{Event: &pb.ApplyEvent_Progress{Progress: &pb.Progress{
		Message: p.Message, Fields: fields, TimeUnixMs: p.Time.UnixMilli(),
	}}}, nil
}

func progressFromProto(p *pb.Progress) Progress {
	out := Progress{Message: p.Message, Time: time.UnixMilli(p.TimeUnixMs)}
	if len(p.Fields) > 0 {
		_ = json.Unmarshal(p.Fields, &out.Fields)
	}
	return out
}
