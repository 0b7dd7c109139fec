package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Outside a Kubernetes pod the k8s provider is a clear error, not a panic.
func TestK8sProviderOutsideAPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := DefaultConfig()
	cfg.Provider = ProviderK8s
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err == nil {
		_ = m.Shutdown(ctx, false)
		t.Fatal("k8s provider started outside a pod")
	}
	if !strings.Contains(err.Error(), "Kubernetes pod") {
		t.Fatalf("error %q does not say it needs a pod", err)
	}
}
