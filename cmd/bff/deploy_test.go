package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The files in deploy/ are what the README's Deploying section points to.
// These tests hold them to the binary: valid YAML, every BFF_* name a real
// setting, and the configuration each one gives the BFF accepted by the
// same loader `bff serve` uses.

const deployDir = "../../deploy"

// TestDeployFilesNameOnlyRealSettings parses every YAML file in deploy/ and
// checks that each BFF_* name in it, comments included, is a setting.
func TestDeployFilesNameOnlyRealSettings(t *testing.T) {
	known := map[string]bool{"BFF_ADMIN_URL": true} // the admin CLI's
	for _, s := range settings {
		known[s.env] = true
	}
	files, _ := filepath.Glob(filepath.Join(deployDir, "*.yaml"))
	for _, want := range []string{"compose.yaml", "kubernetes.yaml"} {
		if !slices.Contains(files, filepath.Join(deployDir, want)) {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	name := regexp.MustCompile(`\bBFF_[A-Z0-9_]+\b`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if docs := decodeAll[map[string]any](t, f, raw); len(docs) == 0 {
			t.Errorf("%s holds no YAML document", f)
		}
		for _, n := range name.FindAllString(string(raw), -1) {
			if !known[n] {
				t.Errorf("%s names %s, which is not a setting of the BFF", filepath.Base(f), n)
			}
		}
	}
}

type k8sEnv struct {
	Name      string
	Value     string
	ValueFrom *struct {
		SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

type k8sObject struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		Replicas *int
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name, Image string
					Ports       []struct {
						Name          string
						ContainerPort int `yaml:"containerPort"`
					}
					Env          []k8sEnv
					VolumeMounts []struct {
						Name      string
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
					ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
					LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
				}
				Volumes []struct {
					Name   string
					Secret *struct {
						SecretName string `yaml:"secretName"`
					}
				}
			}
		}
		TLS   []struct{ Hosts []string } `yaml:"tls"`
		Rules []struct {
			HTTP struct {
				Paths []struct {
					Backend struct {
						Service struct{ Name string }
					}
				}
			}
		}
	}
}

// TestKubernetesManifest: two BFF replicas, readiness on /readyz and
// liveness on /healthz of the admin port, keys and client secret from a
// Secret, the admin token as a file from a Secret, TLS at the Ingress with
// trusted proxies, a Redis that BFF_STORE names, a grace period longer than
// the shutdown timeout — and a configuration `bff serve` accepts.
func TestKubernetesManifest(t *testing.T) {
	path := filepath.Join(deployDir, "kubernetes.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll[k8sObject](t, path, raw)
	find := func(kind, name string) *k8sObject {
		for i := range objs {
			if objs[i].Kind == kind && objs[i].Metadata.Name == name {
				return &objs[i]
			}
		}
		t.Fatalf("kubernetes.yaml has no %s %q", kind, name)
		return nil
	}
	dep := find("Deployment", "bff")
	if replicas := dep.Spec.Replicas; replicas == nil || *replicas != 2 {
		t.Errorf("bff Deployment: replicas not 2")
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("bff pod has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	env := map[string]k8sEnv{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, name := range []string{"BFF_KEYS", "BFF_CLIENT_SECRET"} {
		if e := env[name]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
			t.Errorf("%s must come from a Secret (secretKeyRef), got %+v", name, e)
		}
	}
	if _, ok := env["BFF_ADMIN_TOKEN"]; ok {
		t.Error("BFF_ADMIN_TOKEN is set directly; the admin token belongs in a file from a Secret (BFF_ADMIN_TOKEN_FILE)")
	}
	tokenFile := env["BFF_ADMIN_TOKEN_FILE"].Value
	mountedFromSecret := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && strings.HasPrefix(tokenFile, strings.TrimSuffix(m.MountPath, "/")+"/") {
				mountedFromSecret = true
			}
		}
	}
	if !mountedFromSecret {
		t.Errorf("BFF_ADMIN_TOKEN_FILE=%q is not inside a volume mounted from a Secret", tokenFile)
	}

	adminPort := map[string]int{}
	for _, p := range c.Ports {
		adminPort[p.Name] = p.ContainerPort
	}
	_, listenPort, _ := net.SplitHostPort(env["BFF_ADMIN_LISTEN"].Value)
	for _, probe := range []struct {
		name string
		p    *k8sProbe
		path string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path {
			t.Errorf("%s probe must GET %s", probe.name, probe.path)
			continue
		}
		if port := adminPort[probe.p.HTTPGet.Port]; port == 0 || listenPort != strconv.Itoa(port) {
			t.Errorf("%s probe port %q is not the admin listener (BFF_ADMIN_LISTEN=%s)", probe.name, probe.p.HTTPGet.Port, env["BFF_ADMIN_LISTEN"].Value)
		}
	}

	ing := find("Ingress", "bff")
	if len(ing.Spec.TLS) == 0 {
		t.Error("the Ingress terminates no TLS")
	}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			find("Service", p.Backend.Service.Name)
		}
	}
	store, err := url.Parse(env["BFF_STORE"].Value)
	if err != nil || store.Scheme != "redis" {
		t.Fatalf("BFF_STORE=%q, want a redis:// URL", env["BFF_STORE"].Value)
	}
	find("Service", store.Hostname())
	if redis := find("Deployment", store.Hostname()); !strings.HasPrefix(redis.Spec.Template.Spec.Containers[0].Image, "redis:") {
		t.Errorf("BFF_STORE names %s, which does not run Redis", store.Hostname())
	}

	cfg := loadDeployConfig(t, func(name string) (string, bool) {
		e, ok := env[name]
		if ok && (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil || name == "BFF_ADMIN_TOKEN_FILE") {
			return secretStandIn(t, name), true
		}
		return e.Value, ok
	})
	if len(cfg.TrustedProxies) == 0 {
		t.Error("BFF_TRUSTED_PROXIES is empty: behind the Ingress, the client address and scheme would be the Ingress's")
	}
	if cfg.TLSCert != "" || !strings.HasPrefix(cfg.PublicURL, "https://") {
		t.Errorf("TLS belongs to the Ingress with an https public URL; got BFF_TLS_CERT=%q, BFF_PUBLIC_URL=%q", cfg.TLSCert, cfg.PublicURL)
	}
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than BFF_SHUTDOWN_TIMEOUT %v", grace, cfg.ShutdownTimeout)
	}
}

type composeFile struct {
	Services map[string]struct {
		Environment     map[string]string
		StopGracePeriod string `yaml:"stop_grace_period"`
		Secrets         []string
		Healthcheck     *struct{ Test []string }
	}
	Secrets map[string]struct{ File string }
}

// TestComposeFile: the BFF with its own TLS listener and Redis; secrets
// from the environment or files, never in the file; a stop grace period
// longer than the shutdown timeout; a configuration `bff serve` accepts.
func TestComposeFile(t *testing.T) {
	path := filepath.Join(deployDir, "compose.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := decodeAll[composeFile](t, path, raw)
	if len(docs) != 1 {
		t.Fatalf("compose.yaml holds %d documents, want 1", len(docs))
	}
	f := docs[0]
	svc, ok := f.Services["bff"]
	if !ok {
		t.Fatal("compose.yaml has no bff service")
	}
	if svc.Healthcheck != nil {
		t.Errorf("the bff service overrides the image's HEALTHCHECK (bff healthcheck): %v", svc.Healthcheck.Test)
	}
	for _, s := range svc.Secrets {
		if _, ok := f.Secrets[s]; !ok {
			t.Errorf("secret %s is used but not declared", s)
		}
	}
	// A secret's value in the file would end up in version control.
	substitution := regexp.MustCompile(`^\$\{[A-Z0-9_]+:\?[^}]*\}$`)
	for _, name := range []string{"BFF_KEYS", "BFF_CLIENT_SECRET"} {
		if !substitution.MatchString(svc.Environment[name]) {
			t.Errorf("%s=%q: want ${%s:?…} from the environment", name, svc.Environment[name], name)
		}
	}
	if !strings.HasPrefix(svc.Environment["BFF_ADMIN_TOKEN_FILE"], "/run/secrets/") {
		t.Errorf("BFF_ADMIN_TOKEN_FILE=%q, want a compose secret under /run/secrets/", svc.Environment["BFF_ADMIN_TOKEN_FILE"])
	}
	cfg := loadDeployConfig(t, func(name string) (string, bool) {
		v, ok := svc.Environment[name]
		if substitution.MatchString(v) || name == "BFF_ADMIN_TOKEN_FILE" {
			return secretStandIn(t, name), true
		}
		return v, ok
	})
	store, _ := url.Parse(cfg.Store)
	if _, ok := f.Services[store.Hostname()]; store.Scheme != "redis" || !ok {
		t.Errorf("BFF_STORE=%q does not name the compose file's Redis service", cfg.Store)
	}
	if cfg.TLSCert == "" || !strings.HasPrefix(cfg.PublicURL, "https://") {
		t.Errorf("the compose file serves TLS itself: BFF_TLS_CERT=%q, BFF_PUBLIC_URL=%q", cfg.TLSCert, cfg.PublicURL)
	}
	grace, err := time.ParseDuration(svc.StopGracePeriod)
	if err != nil || grace <= cfg.ShutdownTimeout {
		t.Errorf("stop_grace_period %q is not longer than BFF_SHUTDOWN_TIMEOUT %v", svc.StopGracePeriod, cfg.ShutdownTimeout)
	}
}

// loadDeployConfig runs the deployment's environment through the loader of
// `bff serve`, as the container would.
func loadDeployConfig(t *testing.T, lookup func(string) (string, bool)) *serveConfig {
	t.Helper()
	cfg, err := loadConfig("serve", nil, func(k string) string { v, _ := lookup(k); return v }, io.Discard)
	if err != nil {
		t.Fatalf("bff serve refuses the deployment's configuration: %v", err)
	}
	return cfg
}

// secretStandIn is a valid value for a setting that a deployment takes
// from a secret.
func secretStandIn(t *testing.T, name string) string {
	switch name {
	case "BFF_KEYS":
		return newKey()
	case "BFF_ADMIN_TOKEN_FILE":
		p := filepath.Join(t.TempDir(), "admin-token")
		if err := os.WriteFile(p, []byte("stand-in-admin-token-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return "stand-in-" + strings.ToLower(name)
}

// decodeAll decodes every document of a YAML stream.
func decodeAll[T any](t *testing.T, path string, raw []byte) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: invalid YAML: %v", filepath.Base(path), err)
		}
		out = append(out, v)
	}
}

// TestDockerfileHealthcheck: the image checks itself with `bff healthcheck`
// in exec form (distroless has no shell to run a string form).
func TestDockerfileHealthcheck(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var entrypoint, check string
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "ENTRYPOINT "):
			entrypoint = line
		case strings.HasPrefix(line, "HEALTHCHECK "):
			check = line
		}
	}
	if !strings.Contains(entrypoint, `["/bff", "serve"]`) {
		t.Fatalf("ENTRYPOINT %q: want [\"/bff\", \"serve\"]", entrypoint)
	}
	if !strings.HasSuffix(check, `CMD ["/bff", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q: want exec form CMD [\"/bff\", \"healthcheck\"]", check)
	}
}
