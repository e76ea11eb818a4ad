package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookhq/runbook/sdk/plugin"
)

const (
	// restartedAtAnnotation is what `kubectl rollout restart` sets on the pod
	// template; changing it makes the Deployment roll out new pods.
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// restartKeyAnnotation records which runbook step restarted the
	// Deployment, so a re-run of that step waits instead of restarting again.
	restartKeyAnnotation = "runbookhq.github.io/restart-key"
	revisionAnnotation   = "deployment.kubernetes.io/revision"
)

type restartParams struct {
	Conn
	Deployment string `json:"deployment" required:"true" doc:"the Deployment to restart, e.g. the worker-pool controller's"`
}

type restartOutputs struct {
	Namespace           string        `json:"namespace"`
	Deployment          string        `json:"deployment"`
	RestartedAt         time.Time     `json:"restarted_at" doc:"the restartedAt annotation the rollout carries"`
	PreviousRestartedAt string        `json:"previous_restarted_at" doc:"the annotation before the step (empty if the Deployment had never been restarted this way)"`
	PreviousRevision    string        `json:"previous_revision" doc:"the Deployment's revision before the restart (empty when a re-run found the restart already made)"`
	Revision            string        `json:"revision" doc:"the Deployment's revision after the rollout"`
	Patched             bool          `json:"patched" doc:"false when an earlier attempt of this step had already restarted the Deployment and this one only waited"`
	Replicas            int32         `json:"replicas" doc:"desired replicas"`
	UpdatedReplicas     int32         `json:"updated_replicas"`
	ReadyReplicas       int32         `json:"ready_replicas"`
	AvailableReplicas   int32         `json:"available_replicas"`
	Duration            time.Duration `json:"duration"`
}

func (w *workers) rolloutRestartAction() plugin.Action {
	return plugin.NewAction("rollout_restart", w.rolloutRestart).
		Doc("Restarts a Deployment the way `kubectl rollout restart` does (the pod template's kubectl.kubernetes.io/restartedAt " +
			"annotation) and waits until the rollout is complete (`kubectl rollout status`: the new generation observed, every " +
			"replica updated and available, no old replica left). Idempotent: the step's idempotency key is recorded on the pod " +
			"template, so a re-run of the same step waits for its rollout instead of restarting again.").
		Idempotent().
		Plan(w.planRestart)
}

func (w *workers) rolloutRestart(ctx context.Context, req plugin.Request[restartParams]) (restartOutputs, error) {
	start := time.Now()
	p := req.Params
	ref := p.Namespace + "/" + p.Deployment
	cs, err := w.connect(p.Conn)
	if err != nil {
		return restartOutputs{}, err
	}
	deps := cs.AppsV1().Deployments(p.Namespace)
	d, err := deps.Get(ctx, p.Deployment, metav1.GetOptions{})
	if err != nil {
		return restartOutputs{}, classify(err, "reading deployment %s", ref)
	}
	if d.Spec.Paused {
		return restartOutputs{}, plugin.FatalCode("DeploymentPaused", "deployment %s is paused: a restart would not roll out (resume it first: kubectl rollout resume deployment/%s -n %s)", ref, p.Deployment, p.Namespace)
	}
	out := restartOutputs{Namespace: p.Namespace, Deployment: p.Deployment, PreviousRestartedAt: d.Spec.Template.Annotations[restartedAtAnnotation]}
	var minGeneration int64
	if req.IdempotencyKey != "" && d.Spec.Template.Annotations[restartKeyAnnotation] == req.IdempotencyKey {
		// An earlier attempt of this step restarted it; wait for that rollout.
		at, perr := time.Parse(time.RFC3339, d.Spec.Template.Annotations[restartedAtAnnotation])
		if perr != nil {
			return restartOutputs{}, plugin.FatalCode("BadAnnotation", "deployment %s: %s is %q, not an RFC 3339 time", ref, restartedAtAnnotation, d.Spec.Template.Annotations[restartedAtAnnotation])
		}
		out.RestartedAt, out.PreviousRestartedAt = at, ""
		minGeneration = d.Generation
		req.Progress("this step already restarted the deployment; waiting for that rollout", "deployment", ref, "restarted_at", at.Format(time.RFC3339))
	} else {
		out.PreviousRevision = d.Annotations[revisionAnnotation]
		req.Progress("current state", "deployment", ref, "revision", out.PreviousRevision, "replicas", replicas(d),
			"previous_restarted_at", out.PreviousRestartedAt)
		now := time.Now().UTC().Truncate(time.Second)
		annotations := map[string]string{restartedAtAnnotation: now.Format(time.RFC3339)}
		if req.IdempotencyKey != "" {
			annotations[restartKeyAnnotation] = req.IdempotencyKey
		}
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": annotations}}}})
		pd, err := deps.Patch(ctx, p.Deployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "runbook"})
		if err != nil {
			return restartOutputs{}, classify(err, "restarting deployment %s", ref)
		}
		out.RestartedAt, out.Patched, minGeneration = now, true, pd.Generation
		req.Log.Info("deployment restarted", "deployment", ref, "restarted_at", now.Format(time.RFC3339), "generation", pd.Generation)
		req.Progress("deployment restarted; waiting for the rollout", "deployment", ref, "generation", pd.Generation)
	}

	var last string
	var final *appsv1.Deployment
	err = poll(ctx, p.PollInterval, func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, p.Deployment, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		msg, done, rerr := rolloutStatus(d, minGeneration)
		if rerr != nil {
			return false, rerr
		}
		if msg != last {
			last = msg
			req.Progress(msg, "deployment", ref)
		}
		final = d
		return done, nil
	}, func(err error) {
		req.Log.Warn("reading the deployment failed; still waiting", "deployment", ref, "error", err)
	})
	if err != nil {
		var re *rolloutError
		switch {
		case errors.As(err, &re):
			return restartOutputs{}, plugin.FatalCode("RolloutFailed", "deployment %s: %s", ref, re.msg)
		case errors.Is(err, context.DeadlineExceeded):
			return restartOutputs{}, plugin.RetryableCode("Timeout", "deployment %s: the rollout was not complete when the step's time ran out (last: %s)", ref, orNone(last))
		case errors.Is(err, context.Canceled):
			return restartOutputs{}, err
		}
		return restartOutputs{}, classify(err, "waiting for the rollout of deployment %s", ref)
	}
	out.Revision = final.Annotations[revisionAnnotation]
	out.Replicas = replicas(final)
	out.UpdatedReplicas, out.ReadyReplicas, out.AvailableReplicas = final.Status.UpdatedReplicas, final.Status.ReadyReplicas, final.Status.AvailableReplicas
	out.Duration = time.Since(start)
	req.Log.Info("rollout complete", "deployment", ref, "revision", out.Revision, "replicas", out.Replicas, "duration", out.Duration.String())
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "no status read"
	}
	return s
}

func revisionOf(d *appsv1.Deployment) string {
	if r := d.Annotations[revisionAnnotation]; r != "" {
		return r
	}
	return "unknown"
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// rolloutError is a rollout that cannot complete by waiting.
type rolloutError struct{ msg string }

func (e *rolloutError) Error() string { return e.msg }

// rolloutStatus is `kubectl rollout status` for a Deployment: a message for
// the operator, whether the rollout is complete, and an error if it failed.
// minGeneration is the generation the restart produced: a status from
// before it does not count.
func rolloutStatus(d *appsv1.Deployment, minGeneration int64) (string, bool, error) {
	if d.Status.ObservedGeneration < d.Generation || d.Status.ObservedGeneration < minGeneration {
		return "waiting for the deployment controller to observe the restart", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return "", false, &rolloutError{msg: fmt.Sprintf("the rollout exceeded its progress deadline (%s)", c.Message)}
		}
	}
	want := replicas(d)
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return fmt.Sprintf("%d of %d new replicas updated", s.UpdatedReplicas, want), false, nil
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas), false, nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("rollout complete: %d of %d replicas updated and available", s.AvailableReplicas, want), true, nil
}

func (w *workers) planRestart(ctx context.Context, req plugin.PlanRequest[restartParams]) (plugin.Plan, error) {
	p := req.Params
	ref := p.Namespace + "/" + p.Deployment
	change := plugin.Change{Resource: "deployment " + ref, Field: "spec.template.metadata.annotations[" + restartedAtAnnotation + "]", AfterUnknown: true, Kind: plugin.ChangeAction}
	for _, path := range []string{"/namespace", "/deployment", "/kubeconfig", "/context"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "restart a deployment known only at run time and wait for the rollout", Changes: []plugin.Change{change}}, nil
		}
	}
	cs, err := w.connect(p.Conn)
	if err != nil {
		return plugin.Plan{}, err
	}
	d, err := cs.AppsV1().Deployments(p.Namespace).Get(ctx, p.Deployment, metav1.GetOptions{})
	if err != nil {
		err = classify(err, "reading deployment %s", ref)
		var pe *plugin.Error
		if errors.As(err, &pe) && !pe.Retryable {
			return plugin.Plan{Summary: "restart deployment " + ref, Changes: []plugin.Change{change}, Diagnostics: []plugin.Diagnostic{plugin.Errorf("/deployment", "%s", pe.Message)}}, nil
		}
		return plugin.Plan{}, err
	}
	if v, ok := d.Spec.Template.Annotations[restartedAtAnnotation]; ok {
		change.Before = v
	}
	plan := plugin.Plan{
		Summary: fmt.Sprintf("restart deployment %s (%d replicas, revision %s) and wait for the rollout", ref, replicas(d), revisionOf(d)),
		Changes: []plugin.Change{change},
	}
	if d.Spec.Paused {
		plan.Diagnostics = append(plan.Diagnostics, plugin.Errorf("/deployment", "deployment %s is paused: a restart would not roll out", ref))
	}
	return plan, nil
}
