package cli

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/iam"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

type permissionsFlags struct {
	account, partition string
	policyOnly         bool
}

func newPermissionsCmd(io *IOStreams) *cobra.Command {
	var inputs inputFlags
	var f permissionsFlags
	cmd := &cobra.Command{
		Use:   "permissions FILE",
		Short: "Print the least IAM policy a run with these inputs needs",
		Long: `Print, as JSON, the AWS IAM policy a run of the runbook with these inputs
needs: the IAM actions every action it may call declares (each step whose 'if'
the inputs do not make false, and each step's rollback), on the resources the
steps' parameters name ("*" where they do not, or where a value is known only at
run time), grouped into sorted statements. Roles that actions hand to AWS
services (the S3 Batch Operations role of enable-dr) are listed with their own
policy and trust policy. Nothing is called: plugins are only asked to describe
themselves.

  runbook permissions runbooks/failover.yaml --var primary=@config.json \
    --var dr=@config.dr.json --var-file inputs.yaml --account 123456789012`,
		Args: exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPermissions(cmd.Context(), io, args[0], &inputs, &f)
		},
	}
	inputs.register(cmd)
	cmd.Flags().StringVar(&f.account, "account", "", "AWS account id the policy is for (default: any, \"*\")")
	cmd.Flags().StringVar(&f.partition, "partition", "aws", "AWS partition of the ARNs (aws, aws-cn, aws-us-gov)")
	cmd.Flags().BoolVar(&f.policyOnly, "policy", false, "print only the caller's policy document (for aws iam put-role-policy)")
	return cmd
}

// PermissionsReport is what `runbook permissions` prints.
type PermissionsReport struct {
	Runbook string `json:"runbook"`
	iam.Document
	// Calls are the action calls the policy covers, in document order.
	Calls []PermissionsCall `json:"calls"`
	// NoPermissions are the actions called that declare none (built-ins,
	// plugins that call no AWS API).
	NoPermissions []string `json:"no_permissions_declared,omitempty"`
}

// PermissionsCall is one action call and the IAM actions it adds.
type PermissionsCall struct {
	engine.ActionCall
	IAMActions []string `json:"iam_actions,omitempty"`
}

func runPermissions(ctx context.Context, io *IOStreams, path string, inputs *inputFlags, f *permissionsFlags) error {
	l, err := load(ctx, io, path)
	if err != nil {
		return err
	}
	vals, err := resolveInputs(io, l.rb, inputs)
	if err != nil {
		return err
	}
	rep, err := permissionsOf(l.rb, vals, iam.Context{Partition: f.partition, Account: f.account})
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	enc := json.NewEncoder(termtext.JSONWriter(io.Out))
	enc.SetIndent("", "  ")
	if f.policyOnly {
		return enc.Encode(rep.Policy)
	}
	return enc.Encode(rep)
}

func permissionsOf(rb *runbook.Runbook, vals map[string]any, c iam.Context) (*PermissionsReport, error) {
	eng, err := engine.New(engine.Options{Runbook: rb, Inputs: vals, Invoker: noInvoker{}, Redactor: rb.Redactor(vals), EngineVersion: Version})
	if err != nil {
		return nil, err
	}
	calls, err := eng.ActionCalls()
	if err != nil {
		return nil, err
	}
	rep := &PermissionsReport{Runbook: rb.Name, Calls: []PermissionsCall{}}
	var all []iam.Call
	none := map[string]bool{}
	for _, call := range calls {
		pc := PermissionsCall{ActionCall: call}
		if call.Spec == nil || len(call.Spec.Permissions) == 0 {
			none[call.Uses] = true
		} else {
			ic := iam.Call{Permissions: call.Spec.Permissions, Params: iam.ParamsFor(call.Spec.Params, call.Params, call.Unknown)}
			all = append(all, ic)
			seen := map[string]bool{}
			for _, p := range call.Spec.Permissions {
				if p.Role != "" || !iam.Needed(p, ic.Params) {
					continue
				}
				for _, a := range p.Actions {
					if !seen[a] {
						seen[a] = true
						pc.IAMActions = append(pc.IAMActions, a)
					}
				}
			}
			sort.Strings(pc.IAMActions)
		}
		rep.Calls = append(rep.Calls, pc)
	}
	rep.Document = iam.Collect(all, c)
	for u := range none {
		rep.NoPermissions = append(rep.NoPermissions, u)
	}
	sort.Strings(rep.NoPermissions)
	return rep, nil
}

// noInvoker is the engine's Invoker for listing action calls, which
// invokes nothing.
type noInvoker struct{}

var errNoInvoke = errors.New("runbook permissions calls no action")

func (noInvoker) Invoke(context.Context, engine.Call, func(spec.Progress)) (map[string]any, error) {
	return nil, errNoInvoke
}

func (noInvoker) Plan(context.Context, engine.PlanCall) (*spec.Plan, error) { return nil, errNoInvoke }
