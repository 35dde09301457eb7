package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestPrintImages(t *testing.T) {
	const (
		appV1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		appV2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
		db    = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
		mt    = "application/vnd.oci.image.manifest.v1+json"
	)
	app := func(digest string) *pb.ImageInfo {
		return &pb.ImageInfo{Name: "localhost/app:v1", MediaType: mt, Digest: digest, Size: 837}
	}
	resp := &pb.ListImagesResponse{Nodes: []*pb.NodeImages{
		{Node: "n3", Images: []*pb.ImageInfo{app(appV1), {Name: "docker.io/library/db:16", MediaType: mt, Digest: db, Size: 3 << 20}}},
		{Node: "n1", Images: []*pb.ImageInfo{{Name: "localhost/app:v1", MediaType: mt, Digest: appV1, Size: 837, ContentSize: 5 << 20}}},
		{Node: "n2", Error: "connection refused"},
		{Node: "n4", Images: []*pb.ImageInfo{app(appV2)}},
		{Node: "n5", Error: "not asked: the node is dead"},
	}}
	run := func(t *testing.T, output string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := printImages(&globals{stdout: &out, stderr: &errb}, resp, output); err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String()
	}
	fields := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for i, l := range lines {
			lines[i] = strings.Join(strings.Fields(l), " ")
		}
		return strings.Join(lines, "\n")
	}
	wantWarnings := "warning: no image list from node n2: connection refused\n" +
		"warning: no image list from node n5: not asked: the node is dead\n"

	t.Run("table", func(t *testing.T) {
		out, errs := run(t, "")
		want := strings.Join([]string{
			"IMAGE DIGEST SIZE NODES",
			"docker.io/library/db:16 333333333333 3.0 MiB n3",
			"localhost/app:v1 111111111111 5.0 MiB n1,n3",
			"localhost/app:v1 222222222222 837 B n4",
		}, "\n")
		if got := fields(out); got != want {
			t.Fatalf("table:\n%s\nwant:\n%s", got, want)
		}
		if errs != wantWarnings {
			t.Fatalf("stderr %q; want %q", errs, wantWarnings)
		}
	})
	t.Run("wide", func(t *testing.T) {
		out, _ := run(t, "wide")
		lines := strings.Split(fields(out), "\n")
		if lines[0] != "IMAGE DIGEST SIZE NODES MEDIA-TYPE" || lines[2] != "localhost/app:v1 "+appV1+" 5.0 MiB n1,n3 "+mt {
			t.Fatalf("wide table:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, errs := run(t, "json")
		var got struct {
			Images     []imageJSON      `json:"images"`
			Unanswered []unansweredJSON `json:"unanswered"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(got.Images) != 3 || got.Images[1].Digest != appV1 || strings.Join(got.Images[1].Nodes, ",") != "n1,n3" ||
			got.Images[0].Size != 3<<20 || got.Images[1].ContentSize != 5<<20 || len(got.Unanswered) != 2 || got.Unanswered[0].Node != "n2" {
			t.Fatalf("json %s", out)
		}
		if errs != wantWarnings {
			t.Fatalf("stderr %q", errs)
		}
	})
	t.Run("none", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := printImages(&globals{stdout: &out, stderr: &errb}, &pb.ListImagesResponse{Nodes: []*pb.NodeImages{{Node: "n1"}}}, ""); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 0 || errb.String() != "No images found.\n" {
			t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
		}
	})
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 12 << 20: "12.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q; want %q", n, got, want)
		}
	}
}
