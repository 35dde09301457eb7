package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// tableFields turns a printed table into its rows of fields, so tests do
// not depend on the padding.
func tableFields(s string) []string {
	var rows []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	return rows
}

var topPods = []*pb.PodUsage{
	{Namespace: "default", Name: "web-1", Node: "n1", Containers: []*pb.ContainerUsage{
		{Name: "app", CpuMillis: 12, MemoryBytes: 34 << 20},
		{Name: "sidecar", CpuMillis: 3, MemoryBytes: 1<<20 + 512<<10},
	}},
	{Namespace: "kube-system", Name: "dns", Node: "n2", Containers: []*pb.ContainerUsage{
		{Name: "dns", CpuMillis: 0, MemoryBytes: 900 << 10},
	}},
}

func TestPrintTopPods(t *testing.T) {
	tests := []struct {
		name            string
		all, containers bool
		want            []string
	}{
		{"per pod", false, false, []string{"NAME CPU(cores) MEMORY(bytes)", "web-1 15m 35Mi", "dns 0m 0Mi"}},
		{"all namespaces", true, false, []string{"NAMESPACE NAME CPU(cores) MEMORY(bytes)", "default web-1 15m 35Mi", "kube-system dns 0m 0Mi"}},
		{"per container", false, true, []string{"POD NAME CPU(cores) MEMORY(bytes)", "web-1 app 12m 34Mi", "web-1 sidecar 3m 1Mi", "dns dns 0m 0Mi"}},
		{"per container, all namespaces", true, true, []string{"NAMESPACE POD NAME CPU(cores) MEMORY(bytes)",
			"default web-1 app 12m 34Mi", "default web-1 sidecar 3m 1Mi", "kube-system dns dns 0m 0Mi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := printTopPods(&buf, topPods, tt.all, tt.containers); err != nil {
				t.Fatal(err)
			}
			if got := tableFields(buf.String()); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("table:\n%s\nwant rows:\n%s", buf.String(), strings.Join(tt.want, "\n"))
			}
		})
	}
}

var topNodes = []*pb.NodeUsage{
	{Node: "n1", CpuMillis: 250, MemoryBytes: 512 << 20, CpuAllocatableMillis: 2000, MemoryAllocatableBytes: 4 << 30},
	{Node: "n2", CpuMillis: 1999, MemoryBytes: 3 << 20, CpuAllocatableMillis: 2000},
	{Node: "n3", Error: "no answer before the deadline"},
}

func TestPrintTopNodes(t *testing.T) {
	var buf bytes.Buffer
	if err := printTopNodes(&buf, topNodes); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)",
		"n1 250m 12% 512Mi 12%",
		"n2 1999m 99% 3Mi <unknown>",
		"n3 <unknown> <unknown> <unknown> <unknown>",
	}
	if got := tableFields(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table:\n%s\nwant rows:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}

// fakeTopAPI answers Top with a fixed response and List with pods.
type fakeTopAPI struct {
	pb.UnimplementedShoalServer
	top  *pb.TopResponse
	pods []*pb.Object
}

func (f *fakeTopAPI) Top(context.Context, *pb.TopRequest) (*pb.TopResponse, error) { return f.top, nil }

func (f *fakeTopAPI) List(_ context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	resp := &pb.ListResponse{}
	for _, o := range f.pods {
		if req.GetKind() == o.GetKind() && (req.GetNamespace() == "" || req.GetNamespace() == o.GetNamespace()) {
			resp.Objects = append(resp.Objects, o)
		}
	}
	return resp, nil
}

// serveFake serves api on a loopback port until the test ends.
func serveFake(t *testing.T, api pb.ShoalServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterShoalServer(g, api)
	done := make(chan struct{})
	go func() { _ = g.Serve(lis); close(done) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return lis.Addr().String()
}

// TestTopCommands runs `shoal top` against a fake agent: tables on
// stdout, a warning per node that did not answer on stderr, and kubectl's
// messages when nothing is measured.
func TestTopCommands(t *testing.T) {
	measured := serveFake(t, &fakeTopAPI{top: &pb.TopResponse{Pods: topPods, Nodes: topNodes},
		pods: []*pb.Object{{Kind: "Pod", Namespace: "default", Name: "web-1"}}})
	notYet := serveFake(t, &fakeTopAPI{top: &pb.TopResponse{Nodes: []*pb.NodeUsage{{Node: "n1", Error: "metrics not available yet"}}},
		pods: []*pb.Object{{Kind: "Pod", Namespace: "default", Name: "web-1"}}})
	tests := []struct {
		name       string
		server     string
		args       []string
		wantCode   int
		wantOut    []string // rows of fields
		wantStderr string   // substring; "" wants stderr empty
	}{
		{"pods", measured, []string{"top", "pods"}, 0, []string{"NAME CPU(cores) MEMORY(bytes)", "web-1 15m 35Mi"},
			"warning: node n3 reported no usage: no answer before the deadline"},
		{"one pod's containers", measured, []string{"top", "pod", "web-1", "--containers"}, 0,
			[]string{"POD NAME CPU(cores) MEMORY(bytes)", "web-1 app 12m 34Mi", "web-1 sidecar 3m 1Mi"}, "warning: node n3"},
		{"empty namespace", measured, []string{"top", "pods", "-n", "empty"}, 0, nil, "No resources found in empty namespace."},
		{"missing pod", measured, []string{"top", "pods", "nope"}, 1, nil, `error: pods "nope" not found in namespace "default"`},
		{"pods not measured yet", notYet, []string{"top", "pods"}, 1, nil, "error: metrics not available yet"},
		{"pod not measured yet", notYet, []string{"top", "pods", "web-1"}, 1, nil, "error: metrics not available for pod default/web-1 yet"},
		{"-n and -A", measured, []string{"top", "pods", "-n", "x", "-A"}, 1, nil, "either -n or -A"},
		{"nodes", measured, []string{"top", "nodes"}, 0, []string{"NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)",
			"n1 250m 12% 512Mi 12%", "n2 1999m 99% 3Mi <unknown>", "n3 <unknown> <unknown> <unknown> <unknown>"}, "warning: node n3"},
		{"one node", measured, []string{"top", "node", "n1"}, 0, []string{"NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)", "n1 250m 12% 512Mi 12%"}, ""},
		{"unknown node", measured, []string{"top", "node", "n9"}, 1, nil, `error: nodes "n9" not found`},
		{"nodes not measured yet", notYet, []string{"top", "nodes"}, 1, nil, "error: metrics not available yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append(tt.args, "--server", tt.server), strings.NewReader(""), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.wantCode, out.String(), errb.String())
			}
			var rows []string
			if out.Len() > 0 {
				rows = tableFields(out.String())
			}
			if strings.Join(rows, "\n") != strings.Join(tt.wantOut, "\n") {
				t.Errorf("stdout:\n%s\nwant rows:\n%s", out.String(), strings.Join(tt.wantOut, "\n"))
			}
			if tt.wantStderr == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want %q", errb.String(), tt.wantStderr)
			}
		})
	}
}
