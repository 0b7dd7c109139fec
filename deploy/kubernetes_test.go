package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest document.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// newTyped returns the k8s.io/api type for apiVersion and kind.
func newTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, true
	}
	return nil, false
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decodeManifests decodes every document of kubernetes/*.yaml (but the
// kustomization) strictly: an unknown or duplicated field is an error.
func decodeManifests(t *testing.T) []object {
	t.Helper()
	files, err := fs.Glob(Files, "kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for _, f := range files {
		if path.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := fs.ReadFile(Files, f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			obj, ok := newTyped(tm.APIVersion, tm.Kind)
			if !ok {
				t.Fatalf("%s document %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := strictDecode([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, tm.Kind, err)
			}
			name := obj.(metav1.Object).GetName()
			if name == "" {
				t.Fatalf("%s document %d (%s) has no name", f, i, tm.Kind)
			}
			if ns := obj.(metav1.Object).GetNamespace(); ns != "" {
				t.Errorf("%s %s sets namespace %q: the install picks it (kubectl -n)", tm.Kind, name, ns)
			}
			out = append(out, object{file: f, kind: tm.Kind, name: name, obj: obj})
		}
	}
	return out
}

// strictDecode decodes a YAML document as the API server's strict field
// validation does: duplicated keys, unknown fields and fields spelled in
// another case (clusterIp for clusterIP) are errors.
func strictDecode(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func find[T any](objs []object, kind, name string) (T, bool) {
	var zero T
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			if v, ok := o.obj.(T); ok {
				return v, true
			}
		}
	}
	return zero, false
}

// podTemplates are the pod templates of every workload, by workload.
func podTemplates(objs []object) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch w := o.obj.(type) {
		case *appsv1.StatefulSet:
			out["StatefulSet/"+o.name] = &w.Spec.Template
		case *appsv1.Deployment:
			out["Deployment/"+o.name] = &w.Spec.Template
		case *batchv1.Job:
			out["Job/"+o.name] = &w.Spec.Template
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := decodeManifests(t)
	seen := map[string]bool{}
	kinds := map[string]int{}
	for _, o := range objs {
		key := o.kind + "/" + o.name
		if seen[key] {
			t.Errorf("%s defined twice", key)
		}
		seen[key] = true
		kinds[o.kind]++
	}
	for _, k := range []string{"StatefulSet", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret"} {
		if kinds[k] == 0 {
			t.Errorf("no %s", k)
		}
	}
	// A field the API does not have is refused (the decoder is strict).
	bad := "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n"
	if err := strictDecode([]byte(bad), &corev1.Service{}); err == nil {
		t.Fatal("strict decoding accepted spec.clusterIp")
	}
	dup := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  A: \"1\"\n  A: \"2\"\n"
	if err := strictDecode([]byte(dup), &corev1.ConfigMap{}); err == nil {
		t.Fatal("strict decoding accepted a duplicated key")
	}
}

// TestManifestsHangTogether: references between objects resolve.
func TestManifestsHangTogether(t *testing.T) {
	objs := decodeManifests(t)
	pods := podTemplates(objs)

	// Every Service selects a pod template and targets ports it names.
	for _, o := range objs {
		svc, ok := o.obj.(*corev1.Service)
		if !ok {
			continue
		}
		matched := false
		for wname, tpl := range pods {
			if !selects(svc.Spec.Selector, tpl.Labels) || strings.HasPrefix(wname, "Job/") {
				continue
			}
			matched = true
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.StrVal != "" && !hasPort(tpl, p.TargetPort.StrVal) {
					t.Errorf("Service %s port %s targets %q, which %s does not name", o.name, p.Name, p.TargetPort.StrVal, wname)
				}
			}
		}
		if !matched {
			t.Errorf("Service %s selects no workload", o.name)
		}
	}

	for wname, tpl := range pods {
		spec := &tpl.Spec
		if sa := spec.ServiceAccountName; sa != "" {
			if _, ok := find[*corev1.ServiceAccount](objs, "ServiceAccount", sa); !ok {
				t.Errorf("%s uses service account %s, not defined", wname, sa)
			}
		}
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
		}
		if sts, ok := find[*appsv1.StatefulSet](objs, "StatefulSet", strings.TrimPrefix(wname, "StatefulSet/")); ok {
			for _, c := range sts.Spec.VolumeClaimTemplates {
				volumes[c.Name] = true
			}
		}
		for _, c := range spec.Containers {
			if c.Image == "" {
				t.Errorf("%s container %s has no image", wname, c.Name)
			} else if c.Image != "manta" && !strings.Contains(c.Image, ":") {
				t.Errorf("%s container %s image %s has no tag", wname, c.Name, c.Image)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s container %s mounts %s, not a volume", wname, c.Name, m.Name)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					if _, ok := find[*corev1.ConfigMap](objs, "ConfigMap", ef.ConfigMapRef.Name); !ok {
						t.Errorf("%s envFrom config map %s not defined", wname, ef.ConfigMapRef.Name)
					}
				}
				if ef.SecretRef != nil {
					if _, ok := find[*corev1.Secret](objs, "Secret", ef.SecretRef.Name); !ok {
						t.Errorf("%s envFrom secret %s not defined", wname, ef.SecretRef.Name)
					}
				}
			}
			defined := map[string]bool{}
			for _, e := range c.Env {
				if vf := e.ValueFrom; vf != nil && vf.SecretKeyRef != nil && (vf.SecretKeyRef.Optional == nil || !*vf.SecretKeyRef.Optional) {
					s, ok := find[*corev1.Secret](objs, "Secret", vf.SecretKeyRef.Name)
					if _, has := s.StringData[vf.SecretKeyRef.Key]; !ok || !has {
						t.Errorf("%s env %s: secret %s key %s not defined", wname, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
					}
				}
				// $(VAR) expands only variables defined before it.
				for _, m := range regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).FindAllStringSubmatch(e.Value, -1) {
					if !defined[m[1]] {
						t.Errorf("%s env %s refers to $(%s) before it is defined", wname, e.Name, m[1])
					}
				}
				defined[e.Name] = true
			}
		}
	}

	// The StatefulSet's service is headless.
	for _, o := range objs {
		if sts, ok := o.obj.(*appsv1.StatefulSet); ok {
			svc, ok := find[*corev1.Service](objs, "Service", sts.Spec.ServiceName)
			if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("StatefulSet %s: service %s is not a headless Service here", o.name, sts.Spec.ServiceName)
			}
			if !selects(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
				t.Errorf("StatefulSet %s selector does not match its template", o.name)
			}
		}
	}
}

// TestMantaMember: the member's pod is set up for protoactor's k8s
// provider, the probes, Prometheus and Manta's configuration.
func TestMantaMember(t *testing.T) {
	objs := decodeManifests(t)
	sts, ok := find[*appsv1.StatefulSet](objs, "StatefulSet", "manta")
	if !ok {
		t.Fatal("no StatefulSet manta")
	}
	tpl := sts.Spec.Template
	if tpl.Labels["cluster.proto.actor/cluster"] != "manta" {
		t.Error("pods lack the label protoactor's k8s provider watches (cluster.proto.actor/cluster=manta)")
	}
	// The provider gets its pod, watches and lists the namespace's pods and
	// patches its own labels.
	rb, ok := find[*rbacv1.RoleBinding](objs, "RoleBinding", "manta-cluster-member")
	if !ok || rb.RoleRef.Kind != "Role" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != tpl.Spec.ServiceAccountName {
		t.Fatalf("role binding %+v does not bind the pods' service account %s", rb, tpl.Spec.ServiceAccountName)
	}
	role, ok := find[*rbacv1.Role](objs, "Role", rb.RoleRef.Name)
	if !ok {
		t.Fatalf("role %s not defined", rb.RoleRef.Name)
	}
	granted := map[string]bool{}
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "pods") && slices.Contains(r.APIGroups, "") {
			for _, v := range r.Verbs {
				granted[v] = true
			}
		}
	}
	for _, v := range []string{"get", "list", "watch", "patch"} {
		if !granted[v] {
			t.Errorf("role %s does not grant %s on pods", role.Name, v)
		}
	}
	c := tpl.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" {
		t.Error("readiness probe is not /v2/health/ready")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/v2/health/live" {
		t.Error("liveness probe is not /v2/health/live")
	}
	port := tpl.Annotations["prometheus.io/port"]
	found := false
	for _, p := range c.Ports {
		if fmt.Sprint(p.ContainerPort) == port && p.Name == "http" {
			found = true
		}
	}
	if !found || tpl.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("prometheus annotations %v do not point at the http port's /metrics", tpl.Annotations)
	}

	// Configuration comes as MANTA_* variables the command reads.
	cm, _ := find[*corev1.ConfigMap](objs, "ConfigMap", "manta-config")
	if cm.Data["MANTA_CLUSTER"] != "k8s" {
		t.Errorf("MANTA_CLUSTER = %q, want k8s", cm.Data["MANTA_CLUSTER"])
	}
	names := map[string]bool{}
	for k := range cm.Data {
		names[k] = true
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "MANTA_") {
			names[e.Name] = true
		}
	}
	known := knownEnv(t)
	// Read by code being wired as this is written (logging setup in
	// manta serve): listed here so the test names them when they land.
	pending := map[string]bool{"MANTA_LOG_FORMAT": true, "MANTA_LOG_LEVEL": true}
	var unknown []string
	for n := range names {
		switch {
		case known[n]:
		case pending[n]:
			t.Logf("%s is not read by cmd/manta yet", n)
		default:
			unknown = append(unknown, n)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("manifests set %v, which no Manta code reads", unknown)
	}
}

// knownEnv collects the MANTA_* names that Manta's code mentions (the
// command's flags and the S3 store's credentials).
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(MANTA_[A-Z0-9_]+)"`)
	out := map[string]bool{}
	for _, dir := range []string{"../cmd/manta", "../modelhost/s3store", "../modelhost"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				out[string(m[1])] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("found no MANTA_ variables in cmd/manta")
	}
	return out
}

// TestKustomization: the kustomization lists exactly the manifests.
func TestKustomization(t *testing.T) {
	b, err := fs.ReadFile(Files, "kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Labels     []struct {
			Pairs map[string]string `json:"pairs"`
		} `json:"labels"`
		Resources []string `json:"resources"`
		Images    []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := strictDecode(b, &k); err != nil {
		t.Fatal(err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization %s %s", k.APIVersion, k.Kind)
	}
	files, _ := fs.Glob(Files, "kubernetes/*.yaml")
	var want []string
	for _, f := range files {
		if path.Base(f) != "kustomization.yaml" {
			want = append(want, path.Base(f))
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, files %v", got, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "manta" {
		t.Fatalf("images %+v", k.Images)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(tpl *corev1.PodTemplateSpec, name string) bool {
	for _, c := range tpl.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// TestMembersHoldNoRootCredentials: MinIO's root credentials reach only
// MinIO and its setup Job. Members read the store as a user the setup Job
// creates with the read-only policy; pushes use a separate writer
// (SECURITY.md: whoever can write the store can run code in the members).
func TestMembersHoldNoRootCredentials(t *testing.T) {
	objs := decodeManifests(t)
	root := ""
	for _, o := range objs {
		if s, ok := o.obj.(*corev1.Secret); ok {
			if _, has := s.StringData["MINIO_ROOT_PASSWORD"]; has {
				root = o.name
			}
		}
	}
	if root == "" {
		t.Fatal("no Secret holds MINIO_ROOT_PASSWORD")
	}
	allowed := map[string]bool{"StatefulSet/minio": true, "Job/minio-setup": true}
	pods := podTemplates(objs)
	for wname, tpl := range pods {
		if refs := secretRefs(&tpl.Spec); refs[root] && !allowed[wname] {
			t.Errorf("%s references the root credentials secret %s", wname, root)
		}
	}
	member, ok := pods["StatefulSet/manta"]
	if !ok {
		t.Fatal("no StatefulSet manta")
	}
	// The members' S3 keys come from one Secret...
	var reader string
	for _, e := range member.Spec.Containers[0].Env {
		if e.Name != "MANTA_S3_ACCESS_KEY" && e.Name != "MANTA_S3_SECRET_KEY" {
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Fatalf("member env %s is not from a secret", e.Name)
		}
		if reader != "" && reader != e.ValueFrom.SecretKeyRef.Name {
			t.Fatalf("member S3 keys come from two secrets, %s and %s", reader, e.ValueFrom.SecretKeyRef.Name)
		}
		reader = e.ValueFrom.SecretKeyRef.Name
	}
	if reader == "" {
		t.Fatal("members get no MANTA_S3_ACCESS_KEY/MANTA_S3_SECRET_KEY")
	}
	// ...whose user the setup Job creates and gives the read-only policy.
	job, ok := pods["Job/minio-setup"]
	if !ok {
		t.Fatal("no Job minio-setup")
	}
	c := job.Spec.Containers[0]
	fromSecret := map[string]string{} // env name -> secret
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret[e.Name] = e.ValueFrom.SecretKeyRef.Name
		}
	}
	script := strings.Join(c.Args, "\n")
	attached := map[string]string{} // secret -> policy
	for _, m := range regexp.MustCompile(`(?m)^\s*attach (\S+) "\$([A-Z_]+)"`).FindAllStringSubmatch(script, -1) {
		attached[fromSecret[m[2]]] = m[1]
	}
	if attached[reader] != "manta-store-read" {
		t.Fatalf("the setup Job attaches %q to the members' user (secret %s), want manta-store-read; script:\n%s", attached[reader], reader, script)
	}
	writer := ""
	for s, p := range attached {
		if p == "manta-store-write" {
			writer = s
		}
	}
	if writer == "" || writer == reader || writer == root {
		t.Fatalf("publishing user's secret %q: want its own secret, not the members' (%s) or root's (%s)", writer, reader, root)
	}
	// The policies: the reader only lists and reads the models bucket.
	cm, ok := find[*corev1.ConfigMap](objs, "ConfigMap", "minio-policies")
	if !ok {
		t.Fatal("no ConfigMap minio-policies")
	}
	for _, name := range []string{"manta-store-read", "manta-store-write"} {
		if !strings.Contains(script, "policy create store "+name+" /policies/"+name+".json") {
			t.Errorf("the setup Job does not create policy %s from /policies/%s.json", name, name)
		}
	}
	actions := func(name string) []string {
		var p struct {
			Statement []struct {
				Effect   string
				Action   []string
				Resource []string
			}
		}
		if err := json.Unmarshal([]byte(cm.Data[name+".json"]), &p); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		var out []string
		for _, s := range p.Statement {
			for _, r := range s.Resource {
				if r != "arn:aws:s3:::models" && r != "arn:aws:s3:::models/*" {
					t.Errorf("policy %s reaches %s, beyond the models bucket", name, r)
				}
			}
			if s.Effect == "Allow" {
				out = append(out, s.Action...)
			}
		}
		return out
	}
	for _, a := range actions("manta-store-read") {
		if !strings.HasPrefix(a, "s3:Get") && !strings.HasPrefix(a, "s3:List") || strings.Contains(a, "*") {
			t.Errorf("the members' policy allows %s", a)
		}
	}
	if w := actions("manta-store-write"); !slices.Contains(w, "s3:PutObject") || !slices.Contains(w, "s3:DeleteObject") {
		t.Errorf("the publishing policy allows %v: push needs s3:PutObject, rm s3:DeleteObject", w)
	}
}

// secretRefs names the Secrets a pod reads: env, envFrom and volumes.
func secretRefs(spec *corev1.PodSpec) map[string]bool {
	out := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					out[s.Secret.Name] = true
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					out[ef.SecretRef.Name] = true
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					out[e.ValueFrom.SecretKeyRef.Name] = true
				}
			}
		}
	}
	return out
}
