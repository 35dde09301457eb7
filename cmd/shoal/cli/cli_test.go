package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestApplyConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "agent.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newFlags := func() *pflag.FlagSet {
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		fs.String("name", "", "")
		fs.Int("bootstrap-expect", 0, "")
		fs.StringSlice("join", nil, "")
		fs.StringSlice("labels", nil, "")
		fs.Duration("dead-server-grace", 0, "")
		fs.String("config", "", "")
		return fs
	}
	t.Run("file fills unset flags, command line wins", func(t *testing.T) {
		fs := newFlags()
		if err := fs.Parse([]string{"--name", "cli"}); err != nil {
			t.Fatal(err)
		}
		p := write("name: file\nbootstrap-expect: 3\njoin: [127.0.0.2, 127.0.0.3]\nlabels: {zone: a, disk: ssd}\ndead-server-grace: 45s\n")
		if err := applyConfigFile(fs, p); err != nil {
			t.Fatal(err)
		}
		name, _ := fs.GetString("name")
		expect, _ := fs.GetInt("bootstrap-expect")
		join, _ := fs.GetStringSlice("join")
		labels, _ := fs.GetStringSlice("labels")
		grace, _ := fs.GetDuration("dead-server-grace")
		if name != "cli" || expect != 3 || strings.Join(join, ",") != "127.0.0.2,127.0.0.3" ||
			strings.Join(labels, ",") != "disk=ssd,zone=a" || grace != 45*time.Second {
			t.Fatalf("got name=%s expect=%d join=%v labels=%v grace=%v", name, expect, join, labels, grace)
		}
	})
	for _, tt := range []struct{ name, body, want string }{
		{"unknown setting", "colour: red\n", "colour: unknown setting"},
		{"bad value", "bootstrap-expect: many\n", "bootstrap-expect"},
		{"not a map", "- a\n", "agent.yaml"},
		{"config inside config", "config: other.yaml\n", "config: unknown setting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := applyConfigFile(newFlags(), write(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParseRefs(t *testing.T) {
	tests := []struct {
		args     []string
		needName bool
		want     string // kind/name pairs, or "error: ..." substring
	}{
		{[]string{"cm"}, false, "ConfigMap/"},
		{[]string{"configmaps", "a", "b"}, false, "ConfigMap/a ConfigMap/b"},
		{[]string{"ns/default", "cm/x"}, false, "Namespace/default ConfigMap/x"},
		{[]string{"cm"}, true, "error: a name is required"},
		{[]string{"frobs"}, false, `error: unknown kind "frobs"`},
		{[]string{"placementguards"}, false, `error: unknown kind "placementguards"`},
		{[]string{"cm/"}, false, "want KIND/NAME"},
		{nil, false, "error: a kind is required"},
	}
	for _, tt := range tests {
		refs, err := parseRefs(tt.args, tt.needName)
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			var parts []string
			for _, r := range refs {
				parts = append(parts, r.kind.Name+"/"+r.name)
			}
			got = strings.Join(parts, " ")
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("parseRefs(%q, %v) = %q, want %q", tt.args, tt.needName, got, tt.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	now := time.Now()
	objs := []*pb.Object{
		{Kind: "ConfigMap", Namespace: "a", Name: "one", Spec: []byte(`{"data":{"x":"1","y":"2"},"binaryData":{"z":"AA=="}}`),
			CreateTimeUnixNano: now.Add(-90 * time.Second).UnixNano(), ResourceVersion: 7, Labels: map[string]string{"b": "2", "a": "1"}},
	}
	var buf bytes.Buffer
	if err := printTable(&buf, objs, true, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("table %q", buf.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAMESPACE NAME DATA AGE REVISION LABELS" {
		t.Fatalf("header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "a one 3 90s 7 a=1,b=2" {
		t.Fatalf("row %q", lines[1])
	}
}

func TestMainReportsOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"get", "frobnicators"}, strings.NewReader(""), &out, &errb)
	if code == 0 || strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), "error: ") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
