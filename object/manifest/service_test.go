package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/object"
)

const svcHead = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n"

func TestServicesDecode(t *testing.T) {
	good := map[string]string{
		"cluster ip": `spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}`,
		"headless":      "spec:\n  clusterIP: None\n  selector: {app: db}\n",
		"node port":     "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n",
		"load balancer": "spec:\n  type: LoadBalancer\n  externalIPs: [192.0.2.10]\n  ports: [{port: 443}]\n",
		"external name": "spec:\n  type: ExternalName\n  externalName: db.example.org\n",
		"fixed ip":      "spec:\n  clusterIP: 10.96.0.20\n  clusterIPs: [10.96.0.20]\n  ports: [{port: 80}]\n",
	}
	for name, spec := range good {
		t.Run(name, func(t *testing.T) {
			objs, err := DecodeReader("svc.yaml", strings.NewReader(svcHead+spec))
			if err != nil {
				t.Fatal(err)
			}
			var s corev1.Service
			if err := object.Decode(objs[0], &s); err != nil {
				t.Fatal(err)
			}
			if err := ValidateObject(objs[0]); err != nil {
				t.Fatalf("ValidateObject of a decoded service: %v", err)
			}
		})
	}
}

func TestServicesRefused(t *testing.T) {
	tests := []struct {
		name, spec, path, msg string
	}{
		{"port out of range", "spec:\n  ports: [{port: 70000}]\n", "spec.ports[0].port", "70000: must be between 1 and 65535"},
		{"port zero", "spec:\n  ports: [{port: 0}]\n", "spec.ports[0].port", "0: must be between"},
		{"no ports", "spec:\n  selector: {app: web}\n", "spec.ports", "required"},
		{"duplicate node port", "spec:\n  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n",
			"spec.ports[1].nodePort", "30080/TCP: duplicate of spec.ports[0].nodePort"},
		{"node port out of range", "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n", "spec.ports[0].nodePort", "8080: must be between 30000 and 32767"},
		{"node port on a cluster ip service", "spec:\n  ports: [{port: 80, nodePort: 30080}]\n", "spec.ports[0].nodePort", "only for type"},
		{"selector not a map", "spec:\n  selector: [app, web]\n  ports: [{port: 80}]\n", "spec.selector", ""},
		{"bad selector value", "spec:\n  selector: {app: 'a b'}\n  ports: [{port: 80}]\n", "spec.selector.app", ""},
		{"bad protocol", "spec:\n  ports: [{port: 80, protocol: SCTP}]\n", "spec.ports[0].protocol", `"SCTP": not supported`},
		{"unnamed second port", "spec:\n  ports: [{name: a, port: 80}, {port: 81}]\n", "spec.ports[1].name", "required when"},
		{"duplicate port", "spec:\n  ports: [{name: a, port: 80}, {name: b, port: 80}]\n", "spec.ports[1].port", "80/TCP: duplicate"},
		{"bad target port name", "spec:\n  ports: [{port: 80, targetPort: 'no_such'}]\n", "spec.ports[0].targetPort", ""},
		{"bad cluster ip", "spec:\n  clusterIP: 10.96.0.999\n  ports: [{port: 80}]\n", "spec.clusterIP", `"10.96.0.999": must be an IP address`},
		{"headless node port", "spec:\n  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n", "spec.clusterIP", `"None": not allowed`},
		{"external name missing", "spec:\n  type: ExternalName\n", "spec.externalName", "required"},
		{"unknown type", "spec:\n  type: Magic\n  ports: [{port: 80}]\n", "spec.type", `"Magic": not supported`},
		{"unsupported field", "spec:\n  ports: [{port: 80}]\n  internalTrafficPolicy: Local\n", "spec.internalTrafficPolicy", "not supported"},
		{"affinity timeout", "spec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports: [{port: 80}]\n",
			"spec.sessionAffinityConfig.clientIP.timeoutSeconds", "0: must be between 1 and 86400"},
		{"bad load balancer", "  annotations: {shoal.dev/load-balancer: fastest}\nspec:\n  ports: [{port: 80}]\n", "metadata.annotations[shoal.dev/load-balancer]", `"fastest": not supported`},
		{"bad weights", "  annotations: {shoal.dev/weights: 'v1=90'}\nspec:\n  ports: [{port: 80}]\n", "metadata.annotations[shoal.dev/weights]", `"v1=90": want LABEL:`},
		{"bad weight", "  annotations: {shoal.dev/weights: 'version: v1=90, v2=-1'}\nspec:\n  ports: [{port: 80}]\n", "metadata.annotations[shoal.dev/weights]", `"v2=-1": weight must be`},
		{"dual stack", "spec:\n  clusterIP: 10.96.0.1\n  clusterIPs: [10.96.0.1, 'fd00::1']\n  ports: [{port: 80}]\n", "spec.clusterIPs", "dual-stack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := DecodeReader("svc.yaml", strings.NewReader(svcHead+tt.spec))
			if err == nil {
				t.Fatalf("decoded %v; want an error at %s", objs, tt.path)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != "svc.yaml" || e.Doc != 1 || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant Path %q, Msg starting %q", e, tt.path, tt.msg)
			}
		})
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights(" version : v1=90, v2 = 10 ,canary=0")
	if err != nil {
		t.Fatal(err)
	}
	if w.Label != "version" || strings.Join(w.Values, ",") != "v1,v2,canary" || w.Weight["v1"] != 90 || w.Weight["v2"] != 10 || w.Weight["canary"] != 0 {
		t.Fatalf("parsed %+v", w)
	}
	for _, bad := range []string{"", "version", ": v1=1", "version: v1", "version: v1=x", "version: v1=1, v1=2", "version: v1=0", "bad label!: v1=1", "version: bad value=1"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("ParseWeights(%q) = nil error", bad)
		}
	}
}

// FuzzParseWeights: any annotation value either parses into weights that
// add up to more than zero over distinct values, or is an error.
func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{"version: v1=90, v2=10", "track: a=1", "v: a=0,b=0", "x:=", ":", "a/b: c=1000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeights(s)
		if err != nil {
			return
		}
		total := 0
		seen := map[string]bool{}
		for _, v := range w.Values {
			if seen[v] {
				t.Fatalf("%q: value %q twice", s, v)
			}
			seen[v] = true
			if w.Weight[v] < 0 {
				t.Fatalf("%q: negative weight", s)
			}
			total += w.Weight[v]
		}
		if total <= 0 || len(w.Weight) != len(w.Values) || w.Label == "" {
			t.Fatalf("%q parsed to %+v", s, w)
		}
	})
}

func TestParseRoutes(t *testing.T) {
	r, err := ParseRoutes("header X-Group=beta -> version=b; cookie group=beta -> version=b;")
	if err != nil {
		t.Fatal(err)
	}
	want := Routes{Label: "version", Rules: []RouteRule{
		{Name: "X-Group", Value: "beta", Target: "b"},
		{Cookie: true, Name: "group", Value: "beta", Target: "b"},
	}}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Fatalf("ParseRoutes = %+v; want %+v", r, want)
	}
	header := func(h map[string][]string) func(string) []string {
		return func(n string) []string { return h[n] }
	}
	noCookie := func(string) (string, bool) { return "", false }
	if got := r.Match(header(map[string][]string{"X-Group": {"alpha", "beta"}}), noCookie); got != "b" {
		t.Errorf("header match = %q", got)
	}
	if got := r.Match(header(nil), func(n string) (string, bool) { return "beta", n == "group" }); got != "b" {
		t.Errorf("cookie match = %q", got)
	}
	if got := r.Match(header(map[string][]string{"X-Group": {"Beta"}}), noCookie); got != "" {
		t.Errorf("values match exactly; got %q", got)
	}
	for _, bad := range []string{"", ";", "header X-Group=beta", "query a=b -> v=b", "header X Group=beta -> v=b",
		"header X-Group= -> v=b", "header X-Group=a;b -> v=b", "header X-Group=beta -> =b", "header X-Group=beta -> version=",
		"header X-Group=beta -> bad label!=b", "header A=1 -> version=a; header B=1 -> track=b"} {
		if _, err := ParseRoutes(bad); err == nil {
			t.Errorf("ParseRoutes(%q) = nil error", bad)
		}
	}
}

// FuzzParseRoutes: any annotation value either parses into rules on one
// label with token names and non-empty values, or is an error.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{"header X-Group=beta -> version=b", "cookie g=1 -> v=a; header H=2 -> v=b", ";;", "header =->=", "cookie a=b->c=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoutes(s)
		if err != nil {
			return
		}
		if r.Label == "" || len(r.Rules) == 0 {
			t.Fatalf("%q parsed to %+v", s, r)
		}
		for _, rule := range r.Rules {
			if !isToken(rule.Name) || rule.Value == "" || rule.Target == "" {
				t.Fatalf("%q: rule %+v", s, rule)
			}
		}
	})
}
