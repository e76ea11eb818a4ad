package kubeapi

import (
	"context"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func client(t *testing.T, s *Server, token string) kubernetes.Interface {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := s.WriteKubeconfig(path, "sim"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		cfg.BearerToken = token
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func start(t *testing.T) *Server {
	s, err := Start("kube-token-123")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A restart patch rolls the Deployment out through client-go, phase by
// phase, and its pods are replaced by pods of the new template.
func TestRolloutThroughClientGo(t *testing.T) {
	s := start(t)
	lbls := map[string]string{"app": "worker-pool"}
	s.AddDeployment("workers", "controller", 2, lbls)
	before, _ := s.Pods("workers", "app=worker-pool")
	cs := client(t, s, "")
	ctx := context.Background()
	deps := cs.AppsV1().Deployments("workers")
	d, err := deps.Patch(ctx, "controller", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Spec.Template.Labels["app"] != "worker-pool" {
		t.Fatalf("after patch: generation %d, template %+v", d.Generation, d.Spec.Template.ObjectMeta)
	}
	var seen []appsv1.DeploymentStatus
	for i := 0; i < 20; i++ {
		d, err = deps.Get(ctx, "controller", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, d.Status)
		if d.Status.ObservedGeneration == 2 && d.Status.UpdatedReplicas == 2 && d.Status.Replicas == 2 && d.Status.AvailableReplicas == 2 {
			break
		}
	}
	if len(seen) != 5 || seen[1].Replicas != 3 || seen[1].UpdatedReplicas != 1 {
		t.Errorf("rollout phases %+v", seen)
	}
	if d.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Errorf("revision %q, want 2", d.Annotations["deployment.kubernetes.io/revision"])
	}
	after, _ := s.Pods("workers", "app=worker-pool")
	if len(after) != 2 {
		t.Fatalf("pods after the rollout: %d", len(after))
	}
	for _, p := range after {
		for _, b := range before {
			if p.UID == b.UID {
				t.Errorf("pod %s survived the rollout", p.Name)
			}
		}
		if p.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Errorf("pod %s is not of the new template", p.Name)
		}
	}

	// Unpatched reads do not move anything.
	if d2, _ := deps.Get(ctx, "controller", metav1.GetOptions{}); !equality.Semantic.DeepEqual(d2.Status, d.Status) {
		t.Errorf("status moved without a rollout: %+v", d2.Status)
	}
	if _, err := deps.Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("missing deployment: %v", err)
	}
	if _, err := client(t, s, "wrong").AppsV1().Deployments("workers").Get(ctx, "controller", metav1.GetOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("wrong token: %v", err)
	}
}

// Deleted pods linger, then are replaced by new pods that become ready; a
// stale UID precondition is a conflict.
func TestDeletePodsThroughClientGo(t *testing.T) {
	s := start(t)
	s.AddPods("workers", "worker", 2, map[string]string{"app": "worker"})
	s.AddPods("workers", "other", 1, map[string]string{"app": "other"})
	cs := client(t, s, "")
	ctx := context.Background()
	pods := cs.CoreV1().Pods("workers")
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	wrong := types.UID("not-it")
	if err := pods.Delete(ctx, list.Items[0].Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrong}}); !apierrors.IsConflict(err) {
		t.Errorf("stale precondition: %v", err)
	}
	old := map[types.UID]bool{}
	for _, p := range list.Items {
		old[p.UID] = true
		uid := p.UID
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
			t.Fatal(err)
		}
	}
	ready := 0
	for i := 0; i < 10 && ready < 2; i++ {
		list, err = pods.List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
		if err != nil {
			t.Fatal(err)
		}
		ready = 0
		for _, p := range list.Items {
			if !old[p.UID] && p.Status.Phase == "Running" && p.Status.Conditions[0].Status == "True" {
				ready++
			}
		}
	}
	if ready != 2 || len(list.Items) != 2 {
		t.Errorf("replacements ready %d, pods %d", ready, len(list.Items))
	}
	if others, _ := s.Pods("workers", "app=other"); len(others) != 1 {
		t.Errorf("a pod outside the selector was touched: %+v", others)
	}
}
