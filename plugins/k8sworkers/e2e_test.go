package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

// The end-to-end test runs both actions against a real control plane on
// 127.0.0.1: etcd, kube-apiserver and kube-controller-manager (its
// deployment and replicaset controllers), built from the Go module proxy by
// e2e/build-control-plane.sh. There is no kubelet or container runtime here,
// so the test plays the kubelet: it marks each new pod Running and Ready.
// Everything else (generation bumps, ReplicaSets, rollout status, graceful
// deletion, RBAC) is the real thing.
//
//	RUNBOOK_K8S_E2E_BIN=/tmp/k8s-bin go test -run E2E ./plugins/k8sworkers/

func TestE2ERealControlPlane(t *testing.T) {
	bin := os.Getenv("RUNBOOK_K8S_E2E_BIN")
	if bin == "" {
		t.Skip("RUNBOOK_K8S_E2E_BIN is not set (build the control plane with plugins/k8sworkers/e2e/build-control-plane.sh)")
	}
	noAmbientConfig(t)
	cp := startControlPlane(t, bin)
	ctx := plugintest.Context(t)
	admin := cp.client(t, "admin-token")

	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n := int32(2)
	labels := map[string]string{"app.kubernetes.io/name": "spacelift-worker"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: controller, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "worker", Image: "registry.invalid/spacelift-worker:1"}},
					TerminationGracePeriodSeconds: new(int64),
				},
			},
		},
	}
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeletCtx, stopKubelet := context.WithCancel(ctx)
	defer stopKubelet()
	go playKubelet(kubeletCtx, t, admin)

	// The Deployment becomes available (revision 1) before the restart.
	h := start(t, &workers{connect: connect})
	waitFor(t, ctx, "the deployment to become available", func() bool {
		d, err := admin.AppsV1().Deployments(ns).Get(ctx, controller, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == n && d.Status.UpdatedReplicas == n && d.Status.Replicas == n
	})
	oldPods := podUIDs(t, admin)

	adminKube := cp.kubeconfig(t, "admin-token")
	out, err := h.apply(ctx, "rollout_restart", "e2e/restart", map[string]any{
		"kubeconfig": adminKube, "namespace": ns, "deployment": controller, "poll_interval": "200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["previous_revision"] != "1" || out["revision"] != "2" || out["patched"] != true || out["available_replicas"] != 2.0 {
		t.Fatalf("rollout_restart outputs = %v", out)
	}
	after := podUIDs(t, admin)
	for uid := range oldPods {
		if after[uid] != "" {
			t.Fatalf("old pod %s survived the rollout", after[uid])
		}
	}
	if len(after) != 2 {
		t.Fatalf("pods after the rollout = %v", after)
	}

	out, err = h.apply(ctx, "delete_pods", "e2e/delete", map[string]any{
		"kubeconfig": adminKube, "namespace": ns, "selector": "app.kubernetes.io/name=spacelift-worker", "poll_interval": "200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["deleted"] != 2.0 || out["ready"] != 2.0 {
		t.Fatalf("delete_pods outputs = %v", out)
	}
	for _, name := range out["ready_pods"].([]any) {
		for _, old := range after {
			if name == old {
				t.Fatalf("a deleted pod counted as a replacement: %v", out)
			}
		}
	}

	// A user without RBAC permissions: Forbidden, fatal, clear.
	_, err = h.apply(ctx, "rollout_restart", "e2e/viewer", map[string]any{
		"kubeconfig": cp.kubeconfig(t, "viewer-token"), "namespace": ns, "deployment": controller,
	})
	if pe := pluginError(t, err); pe.Code != "Forbidden" || pe.Retryable || !strings.Contains(pe.Message, `User "viewer" cannot get resource "deployments"`) {
		t.Fatalf("err = %+v", pe)
	}
}

// playKubelet marks every pod of the namespace Running and Ready, as a
// kubelet would once the containers started.
func playKubelet(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				p := &list.Items[i]
				if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodRunning {
					continue
				}
				now := metav1.Now()
				p.Status.Phase = corev1.PodRunning
				p.Status.StartTime = &now
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
				if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
					t.Logf("kubelet: %v", err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func podUIDs(t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[string(p.UID)] = p.Name
		}
	}
	return out
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type controlPlane struct {
	dir    string
	server string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startControlPlane starts etcd, kube-apiserver and kube-controller-manager
// on loopback ports and stops them (and waits for them) when the test ends.
func startControlPlane(t *testing.T, bin string) *controlPlane {
	t.Helper()
	dir := t.TempDir()
	cp := &controlPlane{dir: dir}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saKey := write("sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	saPub := write("sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	tokens := write("tokens.csv", "admin-token,admin,admin,system:masters\nviewer-token,viewer,viewer\n")

	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	run := func(name string, args ...string) {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		// Cleanups run last-in first-out: the controller manager, then the
		// API server, then etcd are killed, and each is waited for.
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log (tail):\n%s", name, b)
			}
		})
	}
	run("etcd", "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peerPort), "--log-level", "warn")
	run("kube-apiserver", "--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(apiPort),
		"--cert-dir", filepath.Join(dir, "certs"), "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey, "--service-cluster-ip-range", "10.0.0.0/24",
		"--disable-admission-plugins", "ServiceAccount")
	cp.server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	ctx := plugintest.Context(t)
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	waitFor(t, ctx, "kube-apiserver /readyz", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := insecure.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	run("kube-controller-manager", "--kubeconfig", cp.kubeconfig(t, "admin-token"), "--controllers", "deployment-controller,replicaset-controller",
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0", "--use-service-account-credentials=false")
	return cp
}

func (cp *controlPlane) kubeconfig(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(cp.dir, token+".kubeconfig")
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: %s
contexts:
- name: e2e
  context:
    cluster: e2e
    user: u
current-context: e2e
`, cp.server, token)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (cp *controlPlane) client(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.kubeconfig(t, token))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
