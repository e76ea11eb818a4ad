package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// Conn says which cluster to talk to. Both actions embed it.
type Conn struct {
	Kubeconfig   string        `json:"kubeconfig" doc:"path to a kubeconfig file; default: $KUBECONFIG, else ~/.kube/config, else the in-cluster service account when running in a pod"`
	Context      string        `json:"context" doc:"the kubeconfig context to use; default: its current context"`
	Namespace    string        `json:"namespace" required:"true" doc:"the namespace of the workers (or of their controller)"`
	PollInterval time.Duration `json:"poll_interval" default:"2s" doc:"how often to check progress while waiting"`
}

// workers holds the actions' dependencies: connect builds the clientset, so
// tests can hand in a fake one.
type workers struct {
	connect func(Conn) (kubernetes.Interface, error)
}

const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// inPod reports whether the plugin runs inside a Kubernetes pod with a
// service account.
func inPod() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "" {
		return false
	}
	_, err := os.Stat(serviceAccountToken)
	return err == nil
}

// restConfig resolves c the way kubectl does, except that with neither a
// kubeconfig nor a context given, a pod uses its service account.
func restConfig(c Conn) (*rest.Config, error) {
	if c.Kubeconfig == "" && c.Context == "" && os.Getenv("KUBECONFIG") == "" && inPod() {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig found (set kubeconfig, or $KUBECONFIG, or run in a pod with a service account)")
		}
		return nil, err
	}
	return cfg, nil
}

func connect(c Conn) (kubernetes.Interface, error) {
	cfg, err := restConfig(c)
	if err != nil {
		return nil, plugin.FatalCode("KubeConfig", "kubernetes client configuration: %v", err)
	}
	cfg.UserAgent = "runbook-plugin-k8sworkers/" + version
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, plugin.FatalCode("KubeConfig", "kubernetes client: %v", err)
	}
	return cs, nil
}

// classify turns a Kubernetes API error into a plugin error: missing
// objects and permission problems are fatal, throttling, timeouts, server
// errors and unreachable API servers retryable.
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	what := fmt.Sprintf(format, args...)
	switch {
	case apierrors.IsNotFound(err):
		return plugin.FatalCode("NotFound", "%s: %v", what, err)
	case apierrors.IsUnauthorized(err):
		return plugin.FatalCode("Unauthorized", "%s: the API server did not accept the credentials: %v", what, err)
	case apierrors.IsForbidden(err):
		return plugin.FatalCode("Forbidden", "%s: %v (the kubeconfig's user or the service account needs this permission)", what, err)
	case transient(err):
		return plugin.RetryableCode("APIUnavailable", "%s: %v", what, err)
	}
	return plugin.FatalCode("APIError", "%s: %v", what, err)
}

// transient reports whether err is worth trying again: throttling, server
// side timeouts and errors, conflicts, or no answer at all.
func transient(err error) bool {
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsConflict(err) ||
		apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	// A certificate the client does not trust stays untrusted.
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &badHost) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// poll calls check every interval until it reports done, returns an error,
// or ctx ends. Errors from check that are transient are reported through
// onTransient and polling goes on: a blip of the API server must not fail a
// wait that can take minutes.
func poll(ctx context.Context, interval time.Duration, check func(context.Context) (bool, error), onTransient func(error)) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !transient(err) {
				return err
			}
			if onTransient != nil {
				onTransient(err)
			}
		} else if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
