package localmesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Identity facts of the istiod that localmesh runs.
const (
	// IstiodServerName is the name in istiod's serving certificate: dial
	// IstiodTLSAddr with it as the TLS server name.
	IstiodServerName = "istiod.istio-system.svc"
	// IstioCAAudience is the token audience istiod's CA accepts.
	IstioCAAudience = "istio-ca"
	// RootCertConfigMap is the ConfigMap istiod writes into every namespace
	// with the mesh's root certificate under RootCertKey.
	RootCertConfigMap = "istio-ca-root-cert"
	RootCertKey       = "root-cert.pem"
)

// CreateServiceAccount creates the ServiceAccount ns/name (and its
// namespace); one that exists already is kept.
func (m *Mesh) CreateServiceAccount(ctx context.Context, ns, name string) error {
	if m.kube == nil {
		return errors.New("localmesh: CreateServiceAccount before the API server started")
	}
	return createServiceAccount(ctx, m.kube, ns, name)
}

func createServiceAccount(ctx context.Context, kube kubernetes.Interface, ns, name string) error {
	if err := ensureNamespace(ctx, kube, ns); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("localmesh: create ServiceAccount %s/%s: %w", ns, name, err)
	}
	return nil
}

// ServiceAccountToken mints a token for the ServiceAccount ns/name through
// the TokenRequest API, as the kubelet does for a projected token volume:
// for the given audience (IstioCAAudience for istiod), valid for ttl (the
// API server's minimum is 10 minutes; 0 asks for one hour).
func (m *Mesh) ServiceAccountToken(ctx context.Context, ns, name, audience string, ttl time.Duration) (string, error) {
	if m.kube == nil {
		return "", errors.New("localmesh: ServiceAccountToken before the API server started")
	}
	return serviceAccountToken(ctx, m.kube, ns, name, audience, ttl)
}

func serviceAccountToken(ctx context.Context, kube kubernetes.Interface, ns, name, audience string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = time.Hour
	}
	secs := int64(ttl / time.Second)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: &secs,
	}}
	got, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("localmesh: token for ServiceAccount %s/%s (audience %q): %w; create it first with CreateServiceAccount", ns, name, audience, err)
	}
	return got.Status.Token, nil
}

// WriteServiceAccountToken mints a token as ServiceAccountToken does and
// writes it to path the way the kubelet updates a projected token file:
// whole (a new file renamed over the old), readable by this user only.
// Call it again to rotate the token.
func (m *Mesh) WriteServiceAccountToken(ctx context.Context, ns, name, audience string, ttl time.Duration, path string) error {
	tok, err := m.ServiceAccountToken(ctx, ns, name, audience, ttl)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("localmesh: token directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return fmt.Errorf("localmesh: write token: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(tok); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("localmesh: write token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("localmesh: write token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("localmesh: write token: %w", err)
	}
	return nil
}

// RootCert returns the mesh's root certificate (PEM) from the
// istio-ca-root-cert ConfigMap that istiod writes into namespace ns,
// waiting (until ctx ends) for istiod to write it.
func (m *Mesh) RootCert(ctx context.Context, ns string) ([]byte, error) {
	if m.kube == nil {
		return nil, errors.New("localmesh: RootCert before the API server started")
	}
	return rootCert(ctx, m.kube, ns)
}

func rootCert(ctx context.Context, kube kubernetes.Interface, ns string) ([]byte, error) {
	if err := ensureNamespace(ctx, kube, ns); err != nil {
		return nil, err
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, RootCertConfigMap, metav1.GetOptions{})
		switch {
		case err == nil && cm.Data[RootCertKey] != "":
			return []byte(cm.Data[RootCertKey]), nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("localmesh: read ConfigMap %s/%s: %w", ns, RootCertConfigMap, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("localmesh: istiod wrote no %s ConfigMap into namespace %s: %w; is an istiod running?", RootCertConfigMap, ns, ctx.Err())
		case <-t.C:
		}
	}
}

// ensureNamespace creates namespace ns unless it exists.
func ensureNamespace(ctx context.Context, kube kubernetes.Interface, ns string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("localmesh: create namespace %s: %w", ns, err)
	}
	return nil
}
